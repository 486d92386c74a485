//! Parsing a suite's index files: the clearsigned `InRelease` and the
//! `Packages` list it vouches for.

use std::io::BufRead;

/// The text covered by the signature of a clearsigned `InRelease`.
///
/// Only this part may be trusted: anything outside the signed block is
/// rejected rather than ignored, as apt does.
pub(crate) fn signed_text(inrelease: &str) -> Result<String, String> {
    const BEGIN: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
    const SIGNATURE: &str = "-----BEGIN PGP SIGNATURE-----";
    const END: &str = "-----END PGP SIGNATURE-----";

    let rest = inrelease
        .trim_start()
        .strip_prefix(BEGIN)
        .ok_or("InRelease does not start with a PGP signed message header")?;
    // Armor headers (`Hash: SHA512`) run up to the first empty line.
    let (_headers, body) = rest
        .split_once("\n\n")
        .or_else(|| rest.split_once("\r\n\r\n"))
        .ok_or("InRelease has no empty line after its PGP armor headers")?;
    let (message, signature) = body
        .split_once(&format!("\n{SIGNATURE}"))
        .ok_or("InRelease has no PGP signature block")?;
    let (_, after) = signature
        .split_once(END)
        .ok_or("InRelease's PGP signature block is not terminated")?;
    if !after.trim().is_empty() {
        return Err("InRelease has text after its PGP signature".to_owned());
    }
    // Undo dash-escaping (RFC 4880, 7.1).
    let lines: Vec<&str> = message
        .lines()
        .map(|l| l.strip_prefix("- ").unwrap_or(l))
        .collect();
    Ok(lines.join("\n") + "\n")
}

/// The value of a single-line field (`Codename: bookworm`) of a Release file.
pub(crate) fn release_field<'t>(release: &'t str, name: &str) -> Option<&'t str> {
    release.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == name).then(|| value.trim())
    })
}

/// The sha256 and size a Release file lists for `path` (e.g. `main/binary-amd64/Packages.xz`).
pub(crate) fn release_sha256(release: &str, path: &str) -> Option<(String, u64)> {
    let mut in_sha256 = false;
    for line in release.lines() {
        if !line.starts_with(' ') {
            in_sha256 = line.trim_end() == "SHA256:";
            continue;
        }
        if !in_sha256 {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(hash), Some(size), Some(name), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if name == path {
            let size = size.parse().ok()?;
            return Some((hash.to_ascii_lowercase(), size));
        }
    }
    None
}

/// The fields of one `Packages` stanza that pinning needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PackageEntry {
    pub package: String,
    pub version: String,
    pub filename: String,
    pub size: u64,
    pub sha256: String,
}

/// Reads a `Packages` file and returns the stanzas whose package name `keep`
/// accepts. Streams, since the uncompressed list is tens of megabytes.
pub(crate) fn scan_packages(
    reader: impl BufRead,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<PackageEntry>, String> {
    let mut found = Vec::new();
    let mut stanza = Stanza::default();
    let mut stanza_start = 1;
    for (number, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(|e| format!("reading failed at line {}: {e}", number + 1))?;
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            if let Some(entry) = stanza.finish(&keep, stanza_start)? {
                found.push(entry);
            }
            stanza_start = number + 2;
            continue;
        }
        // Continuation lines belong to multi-line fields (Description), none of which we need.
        if line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            stanza.set(key, value.trim());
        }
    }
    if let Some(entry) = stanza.finish(&keep, stanza_start)? {
        found.push(entry);
    }
    Ok(found)
}

#[derive(Default)]
struct Stanza {
    package: Option<String>,
    version: Option<String>,
    filename: Option<String>,
    size: Option<String>,
    sha256: Option<String>,
}

impl Stanza {
    fn set(&mut self, key: &str, value: &str) {
        let slot = match key {
            "Package" => &mut self.package,
            "Version" => &mut self.version,
            "Filename" => &mut self.filename,
            "Size" => &mut self.size,
            "SHA256" => &mut self.sha256,
            _ => return,
        };
        *slot = Some(value.to_owned());
    }

    /// Turns the collected fields into an entry if `keep` wants the package,
    /// and resets for the next stanza.
    fn finish(
        &mut self,
        keep: &impl Fn(&str) -> bool,
        line: usize,
    ) -> Result<Option<PackageEntry>, String> {
        let stanza = std::mem::take(self);
        let Some(package) = stanza.package.filter(|p| keep(p)) else {
            return Ok(None);
        };
        let missing =
            |field: &str| format!("the stanza of {package} at line {line} has no {field} field");
        let version = stanza.version.ok_or_else(|| missing("Version"))?;
        let filename = stanza.filename.ok_or_else(|| missing("Filename"))?;
        let size = stanza.size.ok_or_else(|| missing("Size"))?;
        let size = size.parse().map_err(|_| {
            format!("the stanza of {package} at line {line} has a bad Size `{size}`")
        })?;
        let sha256 = stanza
            .sha256
            .ok_or_else(|| missing("SHA256"))?
            .to_ascii_lowercase();
        Ok(Some(PackageEntry {
            package,
            version,
            filename,
            size,
            sha256,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INRELEASE: &str = "\
-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA512

Origin: Debian
Suite: oldstable
Codename: bookworm
MD5Sum:
 b838d31986207780a596ce3e8010f90f  8790396 main/binary-amd64/Packages.xz
SHA256:
 1111111111111111111111111111111111111111111111111111111111111111  1234 main/binary-amd64/Packages
 9E0B5AABB2465B3D2E7A7FE27F9913846277833F7A2826E7767ACCCFF5B588C5  8790396 main/binary-amd64/Packages.xz
- -dash-escaped line
-----BEGIN PGP SIGNATURE-----

iQIzBAEBCgAdFiEE
-----END PGP SIGNATURE-----
";

    #[test]
    fn reads_the_signed_part_of_inrelease() {
        let text = signed_text(INRELEASE).expect("well-formed");
        assert!(text.starts_with("Origin: Debian\n"), "{text}");
        assert!(text.ends_with("\n-dash-escaped line\n"), "{text}");
        assert!(!text.contains("PGP"), "{text}");
        assert_eq!(release_field(&text, "Codename"), Some("bookworm"));
        assert_eq!(release_field(&text, "Suite"), Some("oldstable"));
        assert_eq!(release_field(&text, "Valid-Until"), None);
        // The MD5Sum entry for the same file must not be taken for the sha256.
        assert_eq!(
            release_sha256(&text, "main/binary-amd64/Packages.xz"),
            Some((
                "9e0b5aabb2465b3d2e7a7fe27f9913846277833f7a2826e7767acccff5b588c5".to_owned(),
                8_790_396
            ))
        );
        assert_eq!(release_sha256(&text, "main/binary-i386/Packages.xz"), None);
    }

    #[test]
    fn rejects_unsigned_or_padded_inrelease() {
        assert!(signed_text("Origin: Debian\nCodename: sid\n").is_err());
        let trailing = format!("{INRELEASE}Codename: evil\n");
        assert!(
            signed_text(&trailing)
                .expect_err("text after signature")
                .contains("after")
        );
        let no_signature = INRELEASE
            .split("-----BEGIN PGP SIGNATURE-----")
            .next()
            .expect("has a head");
        assert!(signed_text(no_signature).is_err());
    }

    #[test]
    fn scans_packages_for_wanted_names() {
        let packages = "\
Package: linux-image-6.1.0-47-cloud-amd64-unsigned
Source: linux
Version: 6.1.158-1
Description: Linux 6.1 for x86-64 cloud
 A continuation line with Package: nonsense
Filename: pool/main/l/linux/linux-image-6.1.0-47-cloud-amd64-unsigned_6.1.158-1_amd64.deb
Size: 100
SHA256: AAAA

Package: hello
Version: 1.0
Filename: pool/main/h/hello/hello_1.0_amd64.deb
Size: 5
SHA256: bbbb

Package: linux-image-6.1.0-50-cloud-amd64-unsigned
Version: 6.1.170-1
Filename: pool/main/l/linux/linux-image-6.1.0-50-cloud-amd64-unsigned_6.1.170-1_amd64.deb
Size: 200
SHA256: cccc";
        let found =
            scan_packages(packages.as_bytes(), |p| p.starts_with("linux-image-")).expect("parses");
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0],
            PackageEntry {
                package: "linux-image-6.1.0-47-cloud-amd64-unsigned".to_owned(),
                version: "6.1.158-1".to_owned(),
                filename: "pool/main/l/linux/linux-image-6.1.0-47-cloud-amd64-unsigned_6.1.158-1_amd64.deb".to_owned(),
                size: 100,
                sha256: "aaaa".to_owned(),
            }
        );
        assert_eq!(found[1].version, "6.1.170-1");
        assert_eq!(found[1].size, 200);
    }

    #[test]
    fn incomplete_wanted_stanzas_are_errors() {
        let packages =
            "Package: hello\nVersion: 1\n\nPackage: wanted\nVersion: 1\nSize: 1\nSHA256: aa\n";
        let err = scan_packages(packages.as_bytes(), |p| p == "wanted").expect_err("no Filename");
        assert!(
            err.contains("wanted") && err.contains("Filename") && err.contains("line 4"),
            "{err}"
        );
        // Incomplete stanzas nobody asked for are fine.
        assert_eq!(
            scan_packages(packages.as_bytes(), |p| p == "absent").expect("skips"),
            []
        );
        let bad_size = "Package: wanted\nVersion: 1\nFilename: f\nSize: big\nSHA256: aa\n";
        assert!(
            scan_packages(bad_size.as_bytes(), |_| true)
                .expect_err("bad size")
                .contains("`big`")
        );
    }
}
