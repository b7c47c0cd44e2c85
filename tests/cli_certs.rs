//! `s2spec certs` end to end: the files it writes, CA reuse, overwrite
//! protection and one-line errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use s2spec::pki::CertVariant;
use s2spec::tls::{self, ChainStatus, Role};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "s2spec-cli-certs-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn certs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_s2spec"))
        .arg("certs")
        .args(args)
        .output()
        .expect("run s2spec")
}

fn out_dir(dir: &Path) -> [String; 2] {
    ["--out".to_owned(), dir.display().to_string()]
}

fn run(dir: &Path, rest: &[&str]) -> Output {
    let out = out_dir(dir);
    let mut args: Vec<&str> = out.iter().map(String::as_str).collect();
    args.extend_from_slice(rest);
    certs(&args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn chain(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn assert_one_line_failure(out: &Output, mentions: &str) {
    assert_eq!(out.status.code(), Some(2), "{}", stderr(out));
    let err = stderr(out);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(err.contains(mentions), "{err:?} should mention {mentions}");
    assert!(!err.contains("panicked"));
}

#[test]
fn writes_ca_and_every_variant() {
    let dir = TempDir::new();
    let out = run(&dir.0, &["--domain", "fabrikam.test"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for name in ["ca.pem", "ca.key", "intermediate.pem", "intermediate.key"] {
        assert!(dir.0.join(name).is_file(), "{name}");
        assert!(stdout.contains(name), "printed {name}");
    }
    for variant in CertVariant::ALL {
        let crt = dir.0.join(format!("fabrikam.test.{variant}.crt"));
        let key = dir.0.join(format!("fabrikam.test.{variant}.key"));
        if variant == CertVariant::NoClientCert {
            assert!(!crt.exists() && !key.exists());
            assert!(stdout.contains("no-client-cert: nothing written"));
            continue;
        }
        assert!(stdout.contains(&crt.display().to_string()));
        let key_pem = std::fs::read_to_string(&key).unwrap();
        assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8");
        let chain = chain(&crt);
        // The leaf alone where it has no chain or is sent without it.
        let expected_len = match variant {
            CertVariant::SelfSigned | CertVariant::MissingIntermediate => 1,
            _ => 2,
        };
        assert_eq!(chain.len(), expected_len, "{variant}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.0.join("ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "keys are private");
    }
    // The valid leaf's chain file verifies against ca.pem.
    let root = CertificateDer::from_pem_file(dir.0.join("ca.pem")).unwrap();
    let trust = tls::root_store(&[root]).unwrap();
    let valid = chain(&dir.0.join("fabrikam.test.valid.crt"));
    let v = tls::verify_chain(&trust, &valid, "fabrikam.test", Role::Server).unwrap();
    assert!(tls::check_peer(&v, "fabrikam.test").ok());
    let expired = chain(&dir.0.join("fabrikam.test.expired.crt"));
    let v = tls::verify_chain(&trust, &expired, "fabrikam.test", Role::Client).unwrap();
    assert_eq!(v.chain, ChainStatus::Expired);
}

#[test]
fn second_run_reuses_the_ca_and_refuses_overwrite() {
    let dir = TempDir::new();
    let first = run(&dir.0, &["--domain", "a.test", "--variant", "valid"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let ca_before = std::fs::read(dir.0.join("ca.pem")).unwrap();
    let int_before = std::fs::read(dir.0.join("intermediate.pem")).unwrap();

    let second = run(
        &dir.0,
        &[
            "--domain",
            "b.test",
            "--variant",
            "valid",
            "--variant",
            "cn-only",
        ],
    );
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(String::from_utf8_lossy(&second.stdout).contains("using the existing CA"));
    assert_eq!(std::fs::read(dir.0.join("ca.pem")).unwrap(), ca_before);
    assert_eq!(
        std::fs::read(dir.0.join("intermediate.pem")).unwrap(),
        int_before
    );
    assert!(
        !dir.0.join("b.test.expired.crt").exists(),
        "only the asked variants"
    );
    let root = CertificateDer::from_pem_slice(&ca_before).unwrap();
    let trust = tls::root_store(&[root]).unwrap();
    let b = chain(&dir.0.join("b.test.valid.crt"));
    let v = tls::verify_chain(&trust, &b, "b.test", Role::Client).unwrap();
    assert_eq!(v.chain, ChainStatus::Valid, "new leaf chains to the old CA");

    // Existing leaf: refused, named, untouched.
    let leaf_before = std::fs::read(dir.0.join("a.test.valid.crt")).unwrap();
    let again = run(&dir.0, &["--domain", "a.test", "--variant", "valid"]);
    assert_one_line_failure(&again, "a.test.valid.crt");
    assert!(stderr(&again).contains("--force"));
    assert_eq!(
        std::fs::read(dir.0.join("a.test.valid.crt")).unwrap(),
        leaf_before
    );

    // A key someone widened to 0644 is private again once --force rewrites it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = dir.0.join("a.test.valid.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    // --force replaces it, still under the same CA.
    let forced = run(
        &dir.0,
        &[
            "--domain",
            "a.test",
            "--variant",
            "valid",
            "--force",
            "--key-type",
            "rsa",
        ],
    );
    assert!(forced.status.success(), "{}", stderr(&forced));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = dir.0.join("a.test.valid.key");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "an overwritten key is private");
    }
    assert_ne!(
        std::fs::read(dir.0.join("a.test.valid.crt")).unwrap(),
        leaf_before
    );
    assert_eq!(std::fs::read(dir.0.join("ca.pem")).unwrap(), ca_before);
    let a = chain(&dir.0.join("a.test.valid.crt"));
    let v = tls::verify_chain(&trust, &a, "a.test", Role::Server).unwrap();
    assert!(tls::check_peer(&v, "a.test").ok());
}

#[test]
fn bad_input_fails_with_one_line() {
    let dir = TempDir::new();
    // Unknown variant: clap names the flag and lists the valid values.
    let out = run(&dir.0, &["--domain", "a.test", "--variant", "bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.contains("--variant") && first.contains("bogus"),
        "{err}"
    );
    assert!(
        err.contains("xmpp-addr-only"),
        "lists valid variants: {err}"
    );

    let out = run(&dir.0, &["--domain", "bad_domain.test"]);
    assert_one_line_failure(&out, "--domain");
    assert!(
        !dir.0.join("ca.pem").exists(),
        "nothing written on bad input"
    );

    let out = run(&dir.0, &["--domain", "a.test", "--key-type", "dsa"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--key-type"));
}

#[test]
fn half_present_ca_is_an_error() {
    let dir = TempDir::new();
    assert!(
        run(&dir.0, &["--domain", "a.test", "--variant", "valid"])
            .status
            .success()
    );
    std::fs::remove_file(dir.0.join("intermediate.key")).unwrap();
    let out = run(&dir.0, &["--domain", "b.test", "--variant", "valid"]);
    assert_one_line_failure(&out, "intermediate.key");

    // A corrupt key is named too.
    let dir = TempDir::new();
    assert!(
        run(&dir.0, &["--domain", "a.test", "--variant", "valid"])
            .status
            .success()
    );
    std::fs::write(dir.0.join("ca.key"), "garbage").unwrap();
    let out = run(&dir.0, &["--domain", "b.test", "--variant", "valid"]);
    assert_one_line_failure(&out, "ca.key");
}

#[test]
fn unwritable_out_is_an_error() {
    let dir = TempDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    // A regular file where the directory should be.
    let file = dir.0.join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = run(&file, &["--domain", "a.test"]);
    assert_one_line_failure(&out, "--out");
}
