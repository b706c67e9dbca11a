//! Acting as the mailbox owner while delivering. When the server runs as
//! root, a delivery thread switches its own file-system identity (Linux
//! setfsuid/setfsgid and setgroups, which the kernel keeps per thread when
//! called as raw system calls) to the recipient's uid and gid, so every file
//! and directory it makes belongs to the recipient and every permission check
//! is the recipient's: a symlink planted in a home directory cannot make root
//! write anywhere the user could not. Unprivileged servers write as themselves.

use std::path::Path;

/// The Unix owner of a mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// While alive, this thread's file accesses are the owner's; dropping it
/// restores root's identity.
pub struct AsOwner {
    groups: Vec<libc::gid_t>,
}

/// The group a new mbox should be made with: the group of its directory when
/// that directory is setgid and group-writable (a classic /var/mail, mode
/// 2775 root:mail), so the dotlock can be created there as mail(1) does.
pub fn spool_group(mbox: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let dir = mbox.parent()?;
    let m = std::fs::metadata(if dir.as_os_str().is_empty() { Path::new(".") } else { dir }).ok()?;
    (m.mode() & 0o2020 == 0o2020).then_some(m.gid())
}

/// Switches to `owner` when running as root and the owner is not root.
/// `extra_group` is added to the owner's groups (the mail spool's group).
pub fn become_owner(owner: Option<Owner>, extra_group: Option<u32>) -> Result<Option<AsOwner>, String> {
    let Some(o) = owner else { return Ok(None) };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || o.uid == 0 {
        return Ok(None);
    }
    let saved = current_groups()?;
    let mut groups = vec![o.gid as libc::gid_t];
    if let Some(g) = extra_group.filter(|&g| g != o.gid) {
        groups.push(g as libc::gid_t);
    }
    set_thread_groups(&groups)?;
    let fsgid = extra_group.unwrap_or(o.gid);
    // SAFETY: per-thread credential changes with valid ids; restored by Drop.
    unsafe {
        libc::setfsgid(fsgid);
        libc::setfsuid(o.uid);
        // setfsuid reports the previous value, not errors: read back to confirm.
        if libc::setfsuid(u32::MAX) as u32 != o.uid {
            libc::setfsuid(0);
            libc::setfsgid(0);
            let _ = set_thread_groups(&saved);
            return Err(format!("cannot act as uid {}", o.uid));
        }
    }
    Ok(Some(AsOwner { groups: saved }))
}

impl Drop for AsOwner {
    fn drop(&mut self) {
        // SAFETY: back to root's file-system identity on this thread.
        unsafe {
            libc::setfsuid(0);
            libc::setfsgid(0);
        }
        let _ = set_thread_groups(&self.groups);
    }
}

fn current_groups() -> Result<Vec<libc::gid_t>, String> {
    // SAFETY: getgroups with a correctly sized buffer.
    unsafe {
        let n = libc::getgroups(0, std::ptr::null_mut());
        if n < 0 {
            return Err(format!("getgroups: {}", std::io::Error::last_os_error()));
        }
        let mut v = vec![0 as libc::gid_t; n as usize];
        let n = libc::getgroups(n, v.as_mut_ptr());
        if n < 0 {
            return Err(format!("getgroups: {}", std::io::Error::last_os_error()));
        }
        v.truncate(n as usize);
        Ok(v)
    }
}

/// setgroups(2) for this thread only: the raw system call, not glibc's
/// wrapper (which would change every thread of the process).
fn set_thread_groups(groups: &[libc::gid_t]) -> Result<(), String> {
    // SAFETY: the pointer and length describe a live slice.
    let r = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    if r != 0 {
        return Err(format!("setgroups: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn files_made_as_owner_belong_to_owner_and_root_is_restored() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("note: not root, owner switching is a no-op here");
            assert!(become_owner(Some(Owner { uid: 4242, gid: 4242 }), None).unwrap().is_none());
            return;
        }
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let before = current_groups().unwrap();
        // A thread started before the switch (as the pool's are) keeps root's identity.
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let other = d.path().join("other");
        let t = std::thread::spawn(move || {
            go_rx.recv().unwrap();
            std::fs::write(other, b"y").unwrap();
        });
        {
            let _g = become_owner(Some(Owner { uid: 4242, gid: 4343 }), None).unwrap().unwrap();
            std::fs::write(d.path().join("mine"), b"x").unwrap();
            go_tx.send(()).unwrap();
            t.join().unwrap();
            assert_eq!(std::fs::metadata(d.path().join("other")).unwrap().uid(), 0);
            // As uid 4242 root's files are out of reach.
            assert!(std::fs::read("/etc/shadow").is_err());
        }
        let m = std::fs::metadata(d.path().join("mine")).unwrap();
        assert_eq!((m.uid(), m.gid()), (4242, 4343));
        std::fs::write(d.path().join("root"), b"x").unwrap();
        assert_eq!(std::fs::metadata(d.path().join("root")).unwrap().uid(), 0);
        assert_eq!(current_groups().unwrap(), before);
    }
}
