//! System users' passwords: the shadow database (shadow(5)) through getspnam_r(3), verified with
//! the system's crypt(3) (libxcrypt's crypt_rn: any method it knows, yescrypt included), with account
//! expiry judged as pam_unix judges it. Only root can read /etc/shadow: an unprivileged server asks
//! its privileged helper.

use super::scheme::Stored;
use std::ffi::{CStr, CString, c_char, c_int, c_ulong, c_void};

/// The largest buffer we will grow to for one entry.
const MAX_BUF: usize = 1 << 16;

/// What the shadow database says about one user.
struct Entry {
    hash: String,
    /// Days since the epoch (-1 = not set), as shadow(5) stores them.
    last_change: i64,
    max: i64,
    inactive: i64,
    expire: i64,
}

/// The secret of system user `user` as `{CRYPT}`: `Ok(None)` if the shadow database has no such
/// user; a locked, empty or expired entry gives a secret that matches no password. `Err` is a
/// temporary failure, "cannot read shadow: permission denied" when not running as root.
pub fn secret(user: &str) -> Result<Option<Stored>, String> {
    let Some(e) = getspnam(user)? else { return Ok(None) };
    if expired(&e, today()) {
        return Ok(Some(Stored::locked()));
    }
    // Stored::system: "", "!..." and "*..." never verify.
    Ok(Some(Stored::system(&e.hash)))
}

/// Checks `password` for system user `user`. `Ok(false)`: wrong password, unknown user, or a locked
/// or expired account; `Err`: the database could not be read (temporary).
pub fn verify_system(user: &str, password: &[u8]) -> Result<bool, String> {
    Ok(secret(user)?.is_some_and(|s| s.verify(password)))
}

/// pam_unix's account check: past the expiry date, or past the inactivity period after the
/// password's maximum age (shadow(5) fields 8, and 5 + 7 counted from 3).
fn expired(e: &Entry, today: i64) -> bool {
    if e.expire != -1 && today >= e.expire {
        return true;
    }
    e.last_change > 0 && e.max != -1 && e.inactive != -1 && today >= e.last_change + e.max + e.inactive
}

/// Days since the epoch, as shadow(5) counts them.
fn today() -> i64 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(secs / 86_400).unwrap_or(i64::MAX)
}

fn getspnam(name: &str) -> Result<Option<Entry>, String> {
    // Unreadable /etc/shadow is not "no such user": glibc then asks the next source, and
    // nss-systemd answers for root with a made-up locked entry ("!*"). Ask the file first.
    match std::fs::File::open("/etc/shadow") {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Err(denied()),
        _ => {} // readable, or absent (shadow from LDAP/sssd): the lookup tells
    }
    let Ok(cname) = CString::new(name) else { return Ok(None) };
    if name.is_empty() {
        return Ok(None);
    }
    let mut size = 1024;
    loop {
        let mut buf: Vec<libc::c_char> = vec![0; size];
        // SAFETY: an all-zero spwd is a valid value (null pointers, zero numbers); it is only read
        // after getspnam_r filled it and pointed `result` at it.
        let mut sp: libc::spwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::spwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; buf.len() is the real buffer size.
        let rc =
            unsafe { libc::getspnam_r(cname.as_ptr(), &mut sp, buf.as_mut_ptr(), buf.len(), &mut result) };
        match rc {
            0 if result.is_null() => return Ok(None),
            0 => {
                // SAFETY: on success sp_pwdp points into `buf` (or is null), NUL-terminated.
                let hash = if sp.sp_pwdp.is_null() {
                    String::new()
                } else {
                    unsafe { CStr::from_ptr(sp.sp_pwdp) }.to_string_lossy().into_owned()
                };
                // c_long is 32 bits on armv7: the conversions are not useless there.
                #[allow(clippy::useless_conversion)]
                let entry = Entry {
                    hash,
                    last_change: i64::from(sp.sp_lstchg),
                    max: i64::from(sp.sp_max),
                    inactive: i64::from(sp.sp_inact),
                    expire: i64::from(sp.sp_expire),
                };
                // The hash is a copy now: wipe the buffer it came through.
                buf.iter_mut().for_each(|b| *b = 0);
                std::hint::black_box(&buf);
                return Ok(Some(entry));
            }
            libc::ERANGE if size < MAX_BUF => size *= 2,
            libc::EACCES | libc::EPERM => return Err(denied()),
            libc::ENOENT | libc::ESRCH => return Ok(None),
            e => return Err(format!("shadow lookup failed: {}", std::io::Error::from_raw_os_error(e))),
        }
    }
}

fn denied() -> String {
    "cannot read shadow: permission denied".to_string()
}

// libxcrypt (crypt.h): the reentrant crypt and salt generation, present in every Linux distribution
// since libxcrypt replaced glibc's libcrypt.
#[link(name = "crypt")]
unsafe extern "C" {
    fn crypt_rn(phrase: *const c_char, setting: *const c_char, data: *mut c_void, size: c_int)
    -> *mut c_char;
    fn crypt_gensalt_rn(
        prefix: *const c_char,
        count: c_ulong,
        rbytes: *const c_char,
        nrbytes: c_int,
        output: *mut c_char,
        output_size: c_int,
    ) -> *mut c_char;
}

/// sizeof(struct crypt_data) in libxcrypt.
const CRYPT_DATA_SIZE: usize = 32768;

/// crypt(3) of `password` with `setting` (a stored hash or a new salt). None: the setting is not
/// one the library knows, or the password has a NUL byte or is too long (512 bytes).
pub(crate) fn crypt(password: &[u8], setting: &str) -> Option<String> {
    let phrase = CString::new(password).ok()?;
    let setting = CString::new(setting).ok()?;
    // One scratch area per call: crypt_rn is then safe from any thread. Zeroed before first use as
    // crypt.h asks; libxcrypt erases its internal part before returning.
    let mut data = vec![0u8; CRYPT_DATA_SIZE];
    // SAFETY: both strings are NUL-terminated; `data` is CRYPT_DATA_SIZE writable bytes.
    let out = unsafe {
        crypt_rn(phrase.as_ptr(), setting.as_ptr(), data.as_mut_ptr().cast(), CRYPT_DATA_SIZE as c_int)
    };
    // SAFETY: on success crypt_rn returns a NUL-terminated string inside `data`.
    let result = (!out.is_null()).then(|| unsafe { CStr::from_ptr(out) }.to_string_lossy().into_owned());
    // The output and input copies sit in `data`: wipe them.
    data.iter_mut().for_each(|b| *b = 0);
    std::hint::black_box(&data);
    result.filter(|r| !r.starts_with('*'))
}

/// A new setting (method and salt) from libxcrypt; `None` is its preferred method.
pub(crate) fn gensalt(prefix: Option<&CStr>) -> Result<String, String> {
    let mut out = [0 as c_char; 192]; // CRYPT_GENSALT_OUTPUT_SIZE
    let p = prefix.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: `p` is null or NUL-terminated; a null rbytes asks libxcrypt for the system's
    // randomness (CRYPT_GENSALT_IMPLEMENTS_AUTO_ENTROPY); `out` has the size we pass.
    let r = unsafe { crypt_gensalt_rn(p, 0, std::ptr::null(), 0, out.as_mut_ptr(), out.len() as c_int) };
    if r.is_null() {
        return Err(format!("crypt_gensalt: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: on success `r` points to a NUL-terminated string in `out`.
    Ok(unsafe { CStr::from_ptr(r) }.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn root_with_a_wrong_password_is_refused() {
        let got = verify_system("root", b"certainly-not-the-root-password-xyzzy");
        if is_root() {
            assert_eq!(got, Ok(false));
        } else {
            assert_eq!(got, Err("cannot read shadow: permission denied".to_string()));
        }
    }

    #[test]
    fn unknown_and_odd_names() {
        if !is_root() {
            return;
        }
        for name in ["no-such-user-buzon-xyzzy", "", "ro\0ot"] {
            assert_eq!(verify_system(name, b"x"), Ok(false), "{name:?}");
            assert!(secret(name).unwrap().is_none(), "{name:?}");
        }
    }

    #[test]
    fn system_hashes_locked_empty_and_real() {
        // Fixtures as they appear in /etc/shadow (password "secret").
        let yescrypt = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$GmcwIgvdUC9qLWcKCi6gklUa1dM3ziD43YxYNURLKy0";
        let des = "abNANd1rDfiNc";
        for (hash, ok) in [
            (yescrypt, true),
            (des, true),
            ("", false),
            ("!", false),
            ("*", false),
            ("!!", false),
            (&format!("!{yescrypt}") as &str, false),
            (&format!("*{des}") as &str, false),
            ("ab", false),
            ("$y$j9T$", false),
        ] {
            let s = Stored::system(hash);
            assert_eq!(s.verify(b"secret"), ok, "{hash:?}");
            assert!(!s.verify(b""), "{hash:?}");
            assert!(!s.verify(b"Secret"), "{hash:?}");
        }
        assert!(!Stored::locked().verify(b""));
    }

    #[test]
    fn expiry_as_pam_unix() {
        let e = |last_change, max, inactive, expire| Entry {
            hash: String::new(),
            last_change,
            max,
            inactive,
            expire,
        };
        let today = 20_000;
        for (entry, want) in [
            (e(19_000, 99_999, 7, -1), false),
            (e(19_000, -1, -1, -1), false),
            (e(19_000, -1, -1, 20_001), false),
            (e(19_000, -1, -1, 20_000), true),
            (e(19_000, -1, -1, 0), true),
            (e(19_000, 900, 101, -1), false),
            (e(19_000, 900, 100, -1), true),
            (e(19_000, 990, 9, -1), true),
            (e(0, 1, 1, -1), false),
        ] {
            assert_eq!(
                expired(&entry, today),
                want,
                "{:?}",
                (entry.last_change, entry.max, entry.inactive, entry.expire)
            );
        }
        assert!(super::today() > 19_000);
    }
}
