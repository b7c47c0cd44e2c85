//! SCRAM-SHA-1 client (RFC 5802, as profiled for XMPP by RFC 6120 §6.3.8):
//! the three messages of the exchange and the check of the server's
//! signature. No channel binding (`n,,`): the client does not offer it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};

pub const MECHANISM: &str = "SCRAM-SHA-1";

/// The GS2 header of a client without channel binding.
const GS2: &str = "n,,";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    #[error("server-first-message is malformed ({0})")]
    ServerFirst(&'static str),
    #[error("the server nonce does not extend ours (RFC 5802 §5.1)")]
    Nonce,
    #[error("server-final-message is malformed ({0})")]
    ServerFinal(&'static str),
    #[error("the server reported error `{0}`")]
    ServerError(String),
    #[error("the server signature is wrong: the server does not know the password")]
    Signature,
}

/// The client's side of one exchange.
pub struct Scram {
    password: String,
    client_first_bare: String,
    nonce: String,
    /// The server signature expected in server-final-message.
    expected_signature: Option<Vec<u8>>,
}

type HmacSha1 = Hmac<Sha1>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of every length, so this cannot fail.
    let mut mac = <HmacSha1 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// `saslname` of RFC 5802 §5.1: `=` and `,` escaped.
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

impl Scram {
    /// Starts an exchange for `user` with the client nonce `nonce`
    /// (printable, no comma).
    pub fn new(user: &str, password: &str, nonce: &str) -> Scram {
        Scram {
            password: password.to_string(),
            client_first_bare: format!("n={},r={nonce}", saslname(user)),
            nonce: nonce.to_string(),
            expected_signature: None,
        }
    }

    /// client-first-message (the payload of `<auth/>`, before base64).
    pub fn client_first(&self) -> String {
        format!("{GS2}{}", self.client_first_bare)
    }

    /// client-final-message for the server's challenge.
    pub fn client_final(&mut self, server_first: &str) -> Result<String, ScramError> {
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for part in server_first.split(',') {
            match part.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = Some(v),
                Some(("m", _)) => return Err(ScramError::ServerFirst("mandatory extension")),
                _ => {}
            }
        }
        let nonce = nonce.ok_or(ScramError::ServerFirst("no nonce"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError::Nonce);
        }
        let salt = STANDARD
            .decode(salt.ok_or(ScramError::ServerFirst("no salt"))?)
            .map_err(|_| ScramError::ServerFirst("salt is not base64"))?;
        let iterations: u32 = iterations
            .ok_or(ScramError::ServerFirst("no iteration count"))?
            .parse()
            .map_err(|_| ScramError::ServerFirst("iteration count is not a number"))?;
        if iterations == 0 {
            return Err(ScramError::ServerFirst("iteration count 0"));
        }
        let mut salted = [0u8; 20];
        pbkdf2::pbkdf2_hmac::<Sha1>(self.password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha1::digest(&client_key);
        let without_proof = format!("c={},r={nonce}", STANDARD.encode(GS2));
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac(&salted, b"Server Key");
        self.expected_signature = Some(hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)))
    }

    /// Checks server-final-message (`v=` the server's signature).
    pub fn verify(&self, server_final: &str) -> Result<(), ScramError> {
        if let Some(e) = server_final.strip_prefix("e=") {
            return Err(ScramError::ServerError(e.to_string()));
        }
        let v = server_final
            .split(',')
            .find_map(|p| p.strip_prefix("v="))
            .ok_or(ScramError::ServerFinal("no verifier"))?;
        let got = STANDARD
            .decode(v)
            .map_err(|_| ScramError::ServerFinal("verifier is not base64"))?;
        match &self.expected_signature {
            Some(want) if *want == got => Ok(()),
            Some(_) => Err(ScramError::Signature),
            None => Err(ScramError::ServerFinal("before the client's final message")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example exchange of RFC 5802 §5.
    #[test]
    fn the_rfc_5802_example_exchange() {
        let mut s = Scram::new("user", "pencil", "fyko+d2lbbFgONRv9qkxdawL");
        assert_eq!(s.client_first(), "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        let fin = s
            .client_final("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
            .unwrap();
        assert_eq!(
            fin,
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        assert_eq!(s.verify("v=rmF9pqV8S7suAoZWja4dJRkFsKQ="), Ok(()));
        assert_eq!(
            s.verify("v=AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            Err(ScramError::Signature)
        );
        assert_eq!(
            s.verify("e=invalid-proof"),
            Err(ScramError::ServerError("invalid-proof".into()))
        );
    }

    #[test]
    fn a_server_that_does_not_extend_our_nonce_is_refused() {
        let mut s = Scram::new("user", "pencil", "abc");
        assert_eq!(
            s.client_final("r=xyz123,s=QSXCR+Q6sek8bf92,i=4096"),
            Err(ScramError::Nonce)
        );
        assert_eq!(
            s.client_final("r=abc,s=QSXCR+Q6sek8bf92,i=4096"),
            Err(ScramError::Nonce)
        );
        assert!(matches!(
            s.client_final("r=abcd,s=!!,i=4096"),
            Err(ScramError::ServerFirst(_))
        ));
        assert!(matches!(
            s.client_final("r=abcd,s=QSXCR+Q6sek8bf92,i=x"),
            Err(ScramError::ServerFirst(_))
        ));
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(saslname("a=b,c"), "a=3Db=2Cc");
    }
}
