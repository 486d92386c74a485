//! Errno names for live steps' outcomes: what case files write and what
//! snapshots show.

/// The names a case may expect, with their numbers on Linux.
pub const NAMES: &[(&str, i32)] = &[
    ("EPERM", 1),
    ("ENOENT", 2),
    ("ESRCH", 3),
    ("EINTR", 4),
    ("EIO", 5),
    ("E2BIG", 7),
    ("ENOEXEC", 8),
    ("EBADF", 9),
    ("EAGAIN", 11),
    ("ENOMEM", 12),
    ("EACCES", 13),
    ("EFAULT", 14),
    ("EBUSY", 16),
    ("EEXIST", 17),
    ("ENOTDIR", 20),
    ("EISDIR", 21),
    ("EINVAL", 22),
    ("ETXTBSY", 26),
    ("ENOSPC", 28),
    ("EROFS", 30),
    ("ENOSYS", 38),
    ("EOPNOTSUPP", 95),
    ("EAFNOSUPPORT", 97),
    ("EADDRINUSE", 98),
    ("EADDRNOTAVAIL", 99),
    ("ENETUNREACH", 101),
    ("ECONNRESET", 104),
    ("ETIMEDOUT", 110),
    ("ECONNREFUSED", 111),
    ("EHOSTUNREACH", 113),
];

pub fn by_name(name: &str) -> Option<i32> {
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, e)| *e)
}

/// `ok`, `EPERM`, or `errno 200` for one without a name here.
pub fn describe(errno: i32) -> String {
    if errno == 0 {
        return "ok".to_owned();
    }
    NAMES
        .iter()
        .find(|(_, e)| *e == errno)
        .map_or_else(|| format!("errno {errno}"), |(n, _)| (*n).to_owned())
}

/// How policies refuse: EPERM (LSM, cgroup hooks) or EACCES.
pub fn is_denial(errno: i32) -> bool {
    errno == 1 || errno == 13
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_denials_are_eperm_and_eacces() {
        for (name, e) in NAMES {
            assert_eq!(by_name(name), Some(*e));
            assert_eq!(describe(*e), *name);
        }
        assert_eq!(describe(0), "ok");
        assert_eq!(describe(200), "errno 200");
        assert!(is_denial(1) && is_denial(13));
        assert!(!is_denial(0) && !is_denial(2) && !is_denial(111));
    }
}
