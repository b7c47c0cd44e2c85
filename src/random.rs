//! Unguessable bytes from the system RNG (through ring, already in the tree
//! via rustls). Failure is reported, never turned into predictable zeros.

/// The system RNG failed; nothing secret can be made without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomError;

/// `N` random bytes.
pub fn bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut out = [0u8; N];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut out)
        .map_err(|_| RandomError)?;
    Ok(out)
}

/// `N` random bytes, hex-encoded.
pub fn hex<const N: usize>() -> Result<String, RandomError> {
    bytes::<N>().map(hex::encode)
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_draws_differ() {
        let (a, b) = (super::hex::<16>().unwrap(), super::hex::<16>().unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
