//! `s2spec certs`: write the harness PKI to a directory, so a target under test
//! can be configured with the same CA and certificates the harness uses.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::pki::{self, CertVariant, KeyType, Pki};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Files: DIR/ca.pem, ca.key, intermediate.pem, intermediate.key, and per domain \
                  and variant DIR/DOMAIN.VARIANT.crt (leaf, then the chain it needs) and \
                  DIR/DOMAIN.VARIANT.key (PKCS#8). If DIR already holds a CA, new leaves are \
                  signed by it."
)]
pub struct Args {
    /// Directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Domain to mint certificates for (repeatable).
    #[arg(long = "domain", value_name = "DOMAIN", required = true)]
    domains: Vec<String>,
    /// Certificate variant (repeatable; default: all).
    #[arg(long = "variant", value_name = "VARIANT", value_enum)]
    variants: Vec<CertVariant>,
    /// Key algorithm of the leaves (CA keys are always ECDSA P-256).
    #[arg(long, value_enum, default_value_t = KeyType::Ecdsa)]
    key_type: KeyType,
    /// Overwrite existing leaf files.
    #[arg(long)]
    force: bool,
}

/// A one-line failure for stderr.
struct Trouble(String);

pub fn run(args: Args) -> u8 {
    match certs(&args) {
        Ok(()) => super::exit::OK,
        Err(Trouble(msg)) => {
            eprintln!("s2spec certs: {msg}");
            super::exit::TROUBLE
        }
    }
}

fn certs(args: &Args) -> Result<(), Trouble> {
    let mut domains = BTreeSet::new();
    for domain in &args.domains {
        pki::check_domain(domain).map_err(|e| Trouble(format!("--domain: {e}")))?;
        domains.insert(domain.to_ascii_lowercase());
    }
    let variants: BTreeSet<CertVariant> = if args.variants.is_empty() {
        CertVariant::ALL.into_iter().collect()
    } else {
        args.variants.iter().copied().collect()
    };
    let dir = &args.out;
    std::fs::create_dir_all(dir).map_err(|e| {
        Trouble(format!(
            "--out {}: cannot create directory: {e}",
            dir.display()
        ))
    })?;

    // Refuse before writing anything, so a refused run leaves DIR as it was.
    let leaf_files = |domain: &str, variant: CertVariant| {
        let stem = format!("{domain}.{variant}");
        (
            dir.join(format!("{stem}.crt")),
            dir.join(format!("{stem}.key")),
        )
    };
    if !args.force {
        for domain in &domains {
            for &variant in variants.iter().filter(|v| **v != CertVariant::NoClientCert) {
                let (crt, key) = leaf_files(domain, variant);
                for file in [crt, key] {
                    if file.exists() {
                        return Err(Trouble(format!(
                            "{} exists (use --force to overwrite)",
                            file.display()
                        )));
                    }
                }
            }
        }
    }

    let pki = match Pki::load_dir(dir).map_err(|e| Trouble(e.to_string()))? {
        Some(pki) => {
            println!("using the existing CA in {}", dir.display());
            pki
        }
        None => {
            let pki = Pki::new().map_err(|e| Trouble(e.to_string()))?;
            let pems = pki.to_pems();
            write(
                dir,
                pki::CA_CERT_FILE,
                &pems.root_cert,
                false,
                "root CA: trust anchor",
            )?;
            write(dir, pki::CA_KEY_FILE, &pems.root_key, true, "root CA key")?;
            let what = "intermediate CA";
            write(
                dir,
                pki::INTERMEDIATE_CERT_FILE,
                &pems.intermediate_cert,
                false,
                what,
            )?;
            write(
                dir,
                pki::INTERMEDIATE_KEY_FILE,
                &pems.intermediate_key,
                true,
                "intermediate CA key",
            )?;
            pki
        }
    };

    for domain in &domains {
        for &variant in &variants {
            let leaf = pki
                .leaf(domain, variant, args.key_type)
                .map_err(|e| Trouble(format!("{domain} {variant}: {e}")))?;
            let Some(leaf) = leaf else {
                println!("{domain} {variant}: nothing written (the peer presents no certificate)");
                continue;
            };
            let (crt, key) = leaf_files(domain, variant);
            let what = describe(domain, variant);
            write_path(&crt, &leaf.chain_pem, false, &what)?;
            write_path(&key, &leaf.key_pem, true, &format!("{} key", args.key_type))?;
        }
    }
    Ok(())
}

fn describe(domain: &str, variant: CertVariant) -> String {
    let pass = if variant.passes_for(domain) {
        "passes"
    } else {
        "fails"
    };
    format!("{variant}, {pass} for {domain}")
}

fn write(dir: &Path, name: &str, text: &str, secret: bool, what: &str) -> Result<(), Trouble> {
    write_path(&dir.join(name), text, secret, what)
}

fn write_path(path: &Path, text: &str, secret: bool, what: &str) -> Result<(), Trouble> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        // Private keys readable by the owner only, like any TLS server expects.
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    options
        .open(path)
        .and_then(|mut f| {
            // `mode` only applies to a new file: an overwritten key (--force)
            // loses whatever wider permissions it had before the bytes go in.
            #[cfg(unix)]
            if secret {
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            }
            f.write_all(text.as_bytes())
        })
        .map_err(|e| Trouble(format!("cannot write {}: {e}", path.display())))?;
    println!("wrote {} ({what})", path.display());
    Ok(())
}
