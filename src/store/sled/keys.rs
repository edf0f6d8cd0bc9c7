//! Key layout. Every per-user key starts with the user's fixed-width 8-byte
//! number, so a prefix scan for one user can never reach another user's keys
//! (a variable-length name prefix would let "ann" scan into "anna").
//! Numbers are big-endian so byte order is numeric order.

pub(crate) fn user_prefix(user: u64) -> [u8; 8] {
    user.to_be_bytes()
}

pub(crate) fn plan(user: u64, plan: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&user.to_be_bytes());
    k[8..].copy_from_slice(&plan.to_be_bytes());
    k
}

/// History entries are keyed by the plan version they produced.
pub(crate) fn history(user: u64, plan: u64, version: u64) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..16].copy_from_slice(&self::plan(user, plan));
    k[16..].copy_from_slice(&version.to_be_bytes());
    k
}

pub(crate) fn message(user: u64, seq: u64) -> [u8; 16] {
    plan(user, seq)
}

pub(crate) fn proposal(user: u64, seq: u64) -> [u8; 16] {
    plan(user, seq)
}

pub(crate) fn plan_counter(user: u64) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[..5].copy_from_slice(b"plan/");
    k[5..].copy_from_slice(&user.to_be_bytes());
    k
}

pub(crate) fn proposal_counter(user: u64) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[..5].copy_from_slice(b"prop/");
    k[5..].copy_from_slice(&user.to_be_bytes());
    k
}

/// A user's running conversation summary (in `meta`).
pub(crate) fn summary(user: u64) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[..5].copy_from_slice(b"summ/");
    k[5..].copy_from_slice(&user.to_be_bytes());
    k
}

/// Instants as sortable bytes: milliseconds since the epoch with the sign
/// bit flipped, so byte order is time order for dates before 1970 too.
pub(crate) fn instant(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

pub(crate) fn decode_instant(bytes: &[u8]) -> Option<i64> {
    decode_u64(bytes).map(|v| (v ^ (1 << 63)) as i64)
}

/// Builds a key from a one-byte family tag and parts.
pub(crate) fn tagged(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len()).sum::<usize>());
    k.push(tag);
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

pub(crate) fn decode_u64(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_users_prefix_never_covers_another_users_keys() {
        // Users 1 and 256 would collide under a naive decimal-string prefix
        // scheme ("1" vs "10..."); fixed width keeps them apart.
        for (a, b) in [(1u64, 10u64), (1, 256), (0, u64::MAX), (7, 7 << 8)] {
            assert!(!plan(b, 1).starts_with(&user_prefix(a)));
            assert!(!history(b, 3, 4).starts_with(&user_prefix(a)));
            assert!(plan(a, 1).starts_with(&user_prefix(a)));
        }
        // Plans 1 and 10 of one user: history of plan 1 never includes plan 10.
        assert!(!history(5, 10, 1).starts_with(&plan(5, 1)));
    }

    #[test]
    fn instants_sort_by_time_across_the_epoch() {
        let times = [-86_400_000i64, -1, 0, 1, 1_795_000_000_000];
        for w in times.windows(2) {
            assert!(instant(w[0]) < instant(w[1]));
        }
        for t in times {
            assert_eq!(decode_instant(&instant(t)), Some(t));
        }
    }

    #[test]
    fn keys_sort_numerically() {
        assert!(plan(1, 2) < plan(1, 10));
        assert!(history(1, 1, 9) < history(1, 1, 10));
    }
}
