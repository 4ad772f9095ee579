//! The signing flags (`--sign-key`, `--sign-key-password-stdin` on `build`, `push` and `rebase`) and
//! `mockimg generate-key`.
use crate::error::Error;
use crate::sign::SigningKey;
use clap::Args;
use std::path::{Path, PathBuf};

/// Signing flags shared by `build`, `push` and `rebase`.
#[derive(Args, Debug, Clone, Default)]
pub struct SignArgs {
    /// Sign what is pushed with this key, cosign's format (repeatable): a cosign.key
    /// (password from COSIGN_PASSWORD) or a PKCS#8 PEM ECDSA P-256 key.
    #[arg(
        long = "sign-key",
        value_name = "PATH",
        env = "MOCKIMG_SIGN_KEY",
        value_delimiter = ','
    )]
    pub sign_key: Vec<PathBuf>,
    /// Read the password of encrypted --sign-key files from the first line of stdin instead of
    /// COSIGN_PASSWORD.
    #[arg(long)]
    pub sign_key_password_stdin: bool,
}

impl SignArgs {
    /// Opens every key up front, so a wrong password or a bad file stops the run before
    /// anything is pushed. `pushing`: whether the command pushes at all.
    pub(crate) fn keys(&self, pushing: bool) -> anyhow::Result<Vec<SigningKey>> {
        if self.sign_key.is_empty() {
            if self.sign_key_password_stdin {
                return Err(
                    Error::Usage("--sign-key-password-stdin needs --sign-key PATH".into()).into(),
                );
            }
            return Ok(Vec::new());
        }
        if !pushing {
            return Err(Error::Usage(
                "--sign-key signs what is pushed: add --push REF (files are not signed)".into(),
            )
            .into());
        }
        let password = if self.sign_key_password_stdin {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            Some(line.trim_end_matches(['\n', '\r']).as_bytes().to_vec())
        } else {
            std::env::var_os("COSIGN_PASSWORD").map(|p| p.into_encoded_bytes())
        };
        Ok(self
            .sign_key
            .iter()
            .map(|p| SigningKey::load(p, password.as_deref()))
            .collect::<Result<_, _>>()?)
    }
}

/// `mockimg generate-key`.
#[derive(Args, Debug)]
pub struct GenerateKeyArgs {
    /// Write PREFIX.key (encrypted with COSIGN_PASSWORD, mode 0600) and PREFIX.pub.
    #[arg(long, value_name = "PREFIX", default_value = "cosign")]
    pub output_prefix: PathBuf,
    /// Overwrite existing key files.
    #[arg(long)]
    pub force: bool,
}

/// Writes a new cosign-compatible key pair; the password comes from COSIGN_PASSWORD (which
/// may be empty, as cosign allows, but must be set).
pub(crate) fn run_generate_key(a: GenerateKeyArgs) -> anyhow::Result<()> {
    let password = std::env::var_os("COSIGN_PASSWORD").ok_or_else(|| {
        Error::Usage(
            "generate-key: set COSIGN_PASSWORD to the password for the private key \
             (COSIGN_PASSWORD= for none)"
                .into(),
        )
    })?;
    let with_ext = |ext: &str| {
        let mut s = a.output_prefix.clone().into_os_string();
        s.push(ext);
        PathBuf::from(s)
    };
    let (key_path, pub_path) = (with_ext(".key"), with_ext(".pub"));
    if !a.force {
        for p in [&key_path, &pub_path] {
            if p.symlink_metadata().is_ok() {
                return Err(Error::path(p, "already exists; pass --force to overwrite it").into());
            }
        }
    }
    let key = SigningKey::generate();
    let pem = key.encrypted_pem(&password.into_encoded_bytes())?;
    write(&key_path, pem.as_bytes(), 0o600, a.force)?;
    write(&pub_path, key.public_pem().as_bytes(), 0o644, a.force)?;
    println!("Private key written to {}", key_path.display());
    println!("Public key written to {}", pub_path.display());
    Ok(())
}

/// Through the atomic writer; without `--force` the rename refuses to replace a file that
/// appeared since the check above.
fn write(path: &Path, data: &[u8], mode: u32, force: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = crate::atomic::AtomicFile::create(path)?;
    f.write_all(data)
        .map_err(|e| Error::io("writing", f.temp_path().to_path_buf(), e))?;
    if force {
        f.commit(mode)?;
    } else {
        f.commit_noclobber(mode)
            .map_err(|e| Error::io("writing key file", path, e))?;
    }
    Ok(())
}
