//! Checking the OpenPGP signature of a suite's `InRelease` with `gpgv` and
//! the Debian archive keyring, when the machine has them.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::KernelError;

/// The keyring Debian's `debian-archive-keyring` package installs.
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Whether [`crate::update`] checks the `InRelease` signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureCheck {
    /// Verify with `gpgv` and the Debian archive keyring when both are
    /// installed (a bad signature is an error); otherwise add a note that the
    /// signature was not checked.
    #[default]
    IfAvailable,
    /// Do not verify; for unsigned mirrors such as the ones tests serve.
    Skip,
}

/// The outcome of a check that did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Checked {
    Verified,
    /// Why the signature could not be checked.
    NotChecked(String),
}

/// Checks the signature of the `InRelease` downloaded from `url`.
pub(crate) fn check_signature(
    inrelease: &[u8],
    url: &str,
    mode: SignatureCheck,
) -> Result<Checked, KernelError> {
    match mode {
        SignatureCheck::Skip => Ok(Checked::NotChecked(
            "signature checking was turned off".to_owned(),
        )),
        SignatureCheck::IfAvailable => verify_with("gpgv", Path::new(KEYRING), inrelease, url),
    }
}

fn verify_with(
    gpgv: &str,
    keyring: &Path,
    inrelease: &[u8],
    url: &str,
) -> Result<Checked, KernelError> {
    if !keyring.is_file() {
        return Ok(Checked::NotChecked(format!(
            "{} is not installed (apt install debian-archive-keyring)",
            keyring.display()
        )));
    }
    let temp_dir = std::env::temp_dir();
    let mut file = tempfile::NamedTempFile::new_in(&temp_dir)
        .map_err(|e| KernelError::io("create a temporary file in", &temp_dir, e))?;
    file.write_all(inrelease)
        .and_then(|()| file.flush())
        .map_err(|e| KernelError::io("write", file.path(), e))?;
    let output = Command::new(gpgv)
        .arg("--status-fd=1")
        .arg("--keyring")
        .arg(keyring)
        .arg(file.path())
        .stdin(Stdio::null())
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Checked::NotChecked(format!(
                "{gpgv} is not installed (apt install gpgv)"
            )));
        }
        Err(e) => return Err(KernelError::io("run", gpgv, e)),
    };
    let status = String::from_utf8_lossy(&output.stdout);
    judge_status(&status)
        .map(|()| Checked::Verified)
        .map_err(|detail| {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let detail = match stderr.trim() {
                "" => detail,
                stderr => format!("{detail} (gpgv said: {})", stderr.replace('\n', " / ")),
            };
            KernelError::BadSignature {
                url: url.to_owned(),
                keyring: keyring.to_owned(),
                detail,
            }
        })
}

/// Judges gpgv's `--status-fd` output: at least one good signature by a
/// valid key, and no bad one. (Signatures by keys the keyring lacks are
/// normal while Debian rotates keys, as long as one known key signed.)
fn judge_status(status: &str) -> Result<(), String> {
    let mut good = 0;
    let mut bad = Vec::new();
    let mut unusable = Vec::new();
    for line in status.lines() {
        let Some(rest) = line.strip_prefix("[GNUPG:] ") else {
            continue;
        };
        match rest.split_whitespace().next() {
            // gpg emits exactly one of GOODSIG/EXPSIG/EXPKEYSIG/REVKEYSIG/BADSIG per signature.
            Some("GOODSIG") => good += 1,
            Some("BADSIG") => bad.push(rest),
            Some("EXPSIG" | "EXPKEYSIG" | "REVKEYSIG" | "NO_PUBKEY") => unusable.push(rest),
            _ => {}
        }
    }
    if !bad.is_empty() {
        return Err(format!("bad signature ({})", bad.join("; ")));
    }
    if good > 0 {
        return Ok(());
    }
    if unusable.is_empty() {
        Err("no valid signature found".to_owned())
    } else {
        Err(format!(
            "no signature by a valid key in the keyring ({})",
            unusable.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_gpgv_status() {
        let good = "[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG 6ED0E7B82643E131 Debian Archive Automatic Signing Key (12/bookworm)\n\
                    [GNUPG:] VALIDSIG 4CB5 2026-07-11\n[GNUPG:] NEWSIG\n[GNUPG:] ERRSIG 1234 1 8 01 1783765031 9 -\n\
                    [GNUPG:] NO_PUBKEY 1234\n";
        assert_eq!(judge_status(good), Ok(()));

        let bad =
            format!("{good}[GNUPG:] NEWSIG\n[GNUPG:] BADSIG 78DBA3BC47EF2265 Debian Archive\n");
        let err = judge_status(&bad).expect_err("one bad signature spoils it");
        assert!(
            err.contains("bad signature") && err.contains("78DBA3BC47EF2265"),
            "{err}"
        );

        let unknown =
            "[GNUPG:] NEWSIG\n[GNUPG:] ERRSIG 1234 1 8 01 1 9 -\n[GNUPG:] NO_PUBKEY 1234\n";
        let err = judge_status(unknown).expect_err("no known key");
        assert!(err.contains("NO_PUBKEY 1234"), "{err}");

        let expired = "[GNUPG:] EXPKEYSIG 0E98404D386FA1D9 Debian\n[GNUPG:] VALIDSIG A723 2019\n";
        assert!(judge_status(expired).is_err());
        assert!(judge_status("").is_err());
    }

    #[test]
    fn missing_keyring_or_gpgv_means_not_checked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing_keyring = dir.path().join("keyring.gpg");
        let checked = verify_with("gpgv", &missing_keyring, b"x", "http://m/InRelease")
            .expect("not an error");
        assert!(
            matches!(&checked, Checked::NotChecked(why) if why.contains("keyring.gpg is not installed")),
            "{checked:?}"
        );

        let keyring = dir.path().join("present.gpg");
        std::fs::write(&keyring, b"").expect("write keyring");
        let checked = verify_with("/nonexistent/gpgv", &keyring, b"x", "http://m/InRelease")
            .expect("not an error");
        assert!(
            matches!(&checked, Checked::NotChecked(why) if why.contains("gpgv is not installed")),
            "{checked:?}"
        );

        let skipped =
            check_signature(b"x", "http://m/InRelease", SignatureCheck::Skip).expect("skip");
        assert!(matches!(skipped, Checked::NotChecked(why) if why.contains("turned off")));
    }

    #[test]
    fn unsigned_data_fails_when_gpgv_is_present() {
        // gpgv and the archive keyring come with apt on every Debian system.
        let keyring = Path::new(KEYRING);
        let fake = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nCodename: sid\n\
                     -----BEGIN PGP SIGNATURE-----\n\nbm90IGEgc2lnbmF0dXJl\n-----END PGP SIGNATURE-----\n";
        let err = verify_with("gpgv", keyring, fake, "http://m/dists/sid/InRelease")
            .expect_err("fake signature");
        assert!(
            matches!(err, KernelError::BadSignature { ref url, .. } if url == "http://m/dists/sid/InRelease"),
            "{err:?}"
        );
    }
}
