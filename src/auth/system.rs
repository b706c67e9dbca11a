//! The Unix user and group databases through getpwnam_r(3)/getgrnam_r(3) (POSIX.1-2008): thread-safe,
//! with the buffer grown on ERANGE, so NSS sources (files, LDAP, sssd) all work.

use super::Account;
use std::ffi::{CStr, CString};
use std::path::PathBuf;

/// The largest buffer we will grow to for one entry (a group with thousands of members fits).
const MAX_BUF: usize = 1 << 20;

/// Looks up a Unix user by name. `Ok(None)`: no such user; `Err`: the database could not be read
/// (a temporary failure: the caller should answer 4xx, not 5xx).
pub fn getpwnam(name: &str) -> Result<Option<Account>, String> {
    let Ok(cname) = CString::new(name) else {
        return Ok(None); // a NUL byte: no user can have that name
    };
    if name.is_empty() {
        return Ok(None);
    }
    let mut size = initial_size(libc::_SC_GETPW_R_SIZE_MAX);
    loop {
        let mut buf: Vec<libc::c_char> = vec![0; size];
        // SAFETY: an all-zero passwd is a valid value (null pointers, zero ids); it is only read
        // after getpwnam_r filled it and pointed `result` at it.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; buf.len() is the real buffer size.
        let rc =
            unsafe { libc::getpwnam_r(cname.as_ptr(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        match rc {
            0 if result.is_null() => return Ok(None),
            0 => {
                // SAFETY: on success pw_name and pw_dir point into `buf` (or are null), NUL-terminated.
                let stored = unsafe { cstr(pwd.pw_name) }.unwrap_or_else(|| name.to_string());
                let home = unsafe { cstr(pwd.pw_dir) }.filter(|h| !h.is_empty()).map(PathBuf::from);
                return Ok(Some(Account {
                    name: stored,
                    uid: Some(pwd.pw_uid),
                    gid: Some(pwd.pw_gid),
                    home,
                }));
            }
            libc::ERANGE if size < MAX_BUF => size *= 2,
            // getpwnam_r(3): "ENOENT, ESRCH, EBADF, EPERM, ...: the given name was not found" on
            // some systems instead of a 0 return with a null result.
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
            e => {
                return Err(format!(
                    "user database lookup of {name:?} failed: {}",
                    std::io::Error::from_raw_os_error(e)
                ));
            }
        }
    }
}

/// Looks up a Unix group by name and returns its gid.
pub fn getgrnam(name: &str) -> Result<Option<u32>, String> {
    let Ok(cname) = CString::new(name) else {
        return Ok(None);
    };
    if name.is_empty() {
        return Ok(None);
    }
    let mut size = initial_size(libc::_SC_GETGR_R_SIZE_MAX);
    loop {
        let mut buf: Vec<libc::c_char> = vec![0; size];
        // SAFETY: as in getpwnam.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; buf.len() is the real buffer size.
        let rc =
            unsafe { libc::getgrnam_r(cname.as_ptr(), &mut grp, buf.as_mut_ptr(), buf.len(), &mut result) };
        match rc {
            0 if result.is_null() => return Ok(None),
            0 => return Ok(Some(grp.gr_gid)),
            libc::ERANGE if size < MAX_BUF => size *= 2,
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
            e => {
                return Err(format!(
                    "group database lookup of {name:?} failed: {}",
                    std::io::Error::from_raw_os_error(e)
                ));
            }
        }
    }
}

/// The buffer size sysconf suggests (it may say -1 = "no fixed limit"), bounded to something sane.
fn initial_size(key: libc::c_int) -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(key) };
    usize::try_from(n).unwrap_or(0).clamp(1024, 64 * 1024)
}

/// Copies a C string out of the entry buffer.
///
/// SAFETY: `p` must be null or point to a NUL-terminated string that lives for this call.
unsafe fn cstr(p: *const libc::c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_exists_everywhere() {
        let root = getpwnam("root").unwrap().expect("root is in every Unix user database");
        assert_eq!(root.name, "root");
        assert_eq!(root.uid, Some(0));
        assert!(root.home.is_some_and(|h| h.is_absolute()));
    }

    #[test]
    fn unknown_and_odd_names_are_not_found() {
        for name in ["no-such-user-buzon-test-xyzzy", "", "ro\0ot", "root/../x"] {
            assert_eq!(getpwnam(name).unwrap(), None, "{name:?}");
        }
    }

    #[test]
    fn groups() {
        // gid 0 is "root" on Linux and "wheel" on the BSDs; one of them exists.
        let g = getgrnam("root").unwrap().or(getgrnam("wheel").unwrap());
        assert_eq!(g, Some(0));
        assert_eq!(getgrnam("no-such-group-buzon-xyzzy").unwrap(), None);
    }
}
