//! Privilege handling at start: when started as root with `user` set, give
//! the data directory to that user and drop to it (groups, gid, uid, in that
//! order) before any thread exists, since glibc applies setuid to every
//! thread. Started as root without `user`: keep running as root, warned.

use std::ffi::CString;
use std::path::Path;

use crate::config::Config;

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Drops privileges as configured. Must run before any thread is started.
pub fn drop_if_configured(config: &Config) -> Result<(), String> {
    if !is_root() {
        return Ok(());
    }
    let Some(user) = &config.user else {
        log::warn!("event=running_as_root hint=\"set `user = buzon` in the config to drop privileges\"");
        return Ok(());
    };
    let account = crate::auth::system::getpwnam(user)?.ok_or_else(|| {
        format!("user = {user}: no such Unix user (create it with `adduser --system {user}`)")
    })?;
    let (Some(uid), Some(gid)) = (account.uid, account.gid) else {
        return Err(format!("user = {user}: the account has no uid/gid"));
    };
    if uid == 0 {
        return Err(format!("user = {user}: that is root; name an unprivileged user"));
    }
    chown_tree(&config.data_dir, uid, gid)?;
    let cname = CString::new(user.as_str()).map_err(|_| format!("user = {user}: invalid name"))?;
    // SAFETY: plain libc calls with valid arguments; no threads exist yet.
    unsafe {
        if libc::initgroups(cname.as_ptr(), gid as libc::gid_t) != 0 {
            return Err(format!("initgroups({user}): {}", std::io::Error::last_os_error()));
        }
        if libc::setgid(gid) != 0 {
            return Err(format!("setgid({gid}): {}", std::io::Error::last_os_error()));
        }
        if libc::setuid(uid) != 0 {
            return Err(format!("setuid({uid}): {}", std::io::Error::last_os_error()));
        }
        if libc::setuid(0) == 0 {
            return Err("privileges could not be dropped (setuid(0) still works)".into());
        }
    }
    log::info!("event=privileges_dropped user={user} uid={uid} gid={gid}");
    Ok(())
}

/// Gives the data directory and its spool to the unprivileged user (not
/// following symbolic links).
fn chown_tree(dir: &Path, uid: u32, gid: u32) -> Result<(), String> {
    for p in [dir.to_path_buf(), crate::spool::incoming_dir(dir)] {
        std::os::unix::fs::lchown(&p, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", p.display()))?;
    }
    // The sendmail drop box, if an earlier run as root made it (its mode stays 1733).
    let drop = crate::sendmail::maildrop_dir(dir);
    if drop.is_dir() {
        std::os::unix::fs::lchown(&drop, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", drop.display()))?;
    }
    Ok(())
}
