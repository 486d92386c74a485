//! Finding a Debian mirror in the machine's apt sources (one-line `.list`
//! files and deb822 `.sources` files).

/// One apt source entry, reduced to what mirror selection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AptSource {
    pub types: Vec<String>,
    pub uris: Vec<String>,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    pub enabled: bool,
}

/// Codenames and suite names that only Debian uses. Releases older than
/// bullseye are left out: they live on archive.debian.org, which lacks the
/// newer suites.
const DEBIAN_SUITES: &[&str] = &[
    "bullseye",
    "bookworm",
    "trixie",
    "forky",
    "duke",
    "sid",
    "oldoldstable",
    "oldstable",
    "stable",
    "testing",
    "unstable",
];

/// Parses a one-line-style file: `deb [options] URI suite [component...]`.
pub(crate) fn parse_one_line(text: &str) -> Vec<AptSource> {
    let mut sources = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some((kind, rest)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let mut rest = rest.trim_start();
        if let Some(options) = rest.strip_prefix('[') {
            let Some((_, after)) = options.split_once(']') else {
                continue;
            };
            rest = after;
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        sources.push(AptSource {
            types: vec![kind.to_owned()],
            uris: vec![uri.to_owned()],
            suites: vec![suite.to_owned()],
            components: words.map(str::to_owned).collect(),
            enabled: true,
        });
    }
    sources
}

/// Parses a deb822-style `.sources` file: stanzas of `Field: value`
/// separated by blank lines; values may continue on indented lines.
pub(crate) fn parse_deb822(text: &str) -> Vec<AptSource> {
    let mut sources = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines().chain(std::iter::once("")) {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !fields.is_empty() {
                sources.push(stanza_to_source(&std::mem::take(&mut fields)));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    sources
}

fn stanza_to_source(fields: &[(String, String)]) -> AptSource {
    let words = |name: &str| -> Vec<String> {
        fields
            .iter()
            .filter(|(key, _)| key == name)
            .flat_map(|(_, value)| value.split_whitespace().map(str::to_owned))
            .collect()
    };
    let enabled = fields
        .iter()
        .find(|(key, _)| key == "enabled")
        .is_none_or(|(_, value)| {
            !matches!(value.to_ascii_lowercase().as_str(), "no" | "false" | "0")
        });
    AptSource {
        types: words("types"),
        uris: words("uris"),
        suites: words("suites"),
        components: words("components"),
        enabled,
    }
}

/// Whether `suite` (e.g. `bookworm-updates`) is a Debian suite that carries
/// packages; security suites are excluded since they hold only fixes.
fn is_debian_suite(suite: &str) -> bool {
    if suite.contains("security") || suite.ends_with("/updates") {
        return false;
    }
    let base = suite.split(['-', '/']).next().unwrap_or(suite);
    DEBIAN_SUITES.contains(&base)
}

/// The first http(s) `deb` source for a Debian suite, preferring one that
/// serves `main`; the URL has no trailing slash.
pub(crate) fn pick_debian_mirror(sources: &[AptSource]) -> Option<String> {
    let candidates = sources
        .iter()
        .filter(|s| s.enabled && s.types.iter().any(|t| t == "deb"))
        .filter(|s| s.suites.iter().any(|suite| is_debian_suite(suite)))
        .flat_map(|s| {
            s.uris
                .iter()
                .filter(|uri| uri.starts_with("http://") || uri.starts_with("https://"))
                .map(move |uri| {
                    (
                        uri.trim_end_matches('/').to_owned(),
                        s.components.iter().any(|c| c == "main"),
                    )
                })
        });
    let mut first = None;
    for (uri, serves_main) in candidates {
        if serves_main {
            return Some(uri);
        }
        first.get_or_insert(uri);
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_debian_mirror_from_deb822() {
        // This machine's file, security stanza first to show it is skipped.
        let text = "\
Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main

Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";
        let sources = parse_deb822(text);
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[1].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(
            pick_debian_mirror(&sources).as_deref(),
            Some("http://deb.debian.org/debian")
        );
    }

    #[test]
    fn deb822_continuations_disabled_stanzas_and_deb_src() {
        let text = "\
Types: deb
URIs: https://disabled.example/debian
Suites: trixie
Components: main
Enabled: no

Types: deb-src
URIs: https://source-only.example/debian
Suites: trixie
Components: main

Types: deb
URIs:
 https://mirror.example/debian
 http://second.example/debian
Suites: sid
Components: main contrib
";
        let sources = parse_deb822(text);
        assert_eq!(sources.len(), 3);
        assert!(!sources[0].enabled);
        assert_eq!(
            sources[2].uris,
            [
                "https://mirror.example/debian",
                "http://second.example/debian"
            ]
        );
        assert_eq!(
            pick_debian_mirror(&sources).as_deref(),
            Some("https://mirror.example/debian")
        );
    }

    #[test]
    fn picks_from_one_line_sources_preferring_main() {
        let text = "\
# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] https://packages.cloud.google.com/apt cloud-sdk-bookworm main
deb http://security.debian.org/debian-security bookworm-security main
deb http://security.debian.org/ bullseye/updates main
deb http://contrib-only.example/debian bookworm contrib non-free
deb [ arch=amd64 ] http://ftp.de.debian.org/debian/ bookworm main # trailing comment
";
        let sources = parse_one_line(text);
        assert_eq!(sources.len(), 5);
        assert_eq!(sources[4].uris, ["http://ftp.de.debian.org/debian/"]);
        assert_eq!(sources[4].components, ["main"]);
        assert_eq!(
            pick_debian_mirror(&sources).as_deref(),
            Some("http://ftp.de.debian.org/debian")
        );
        // Without the main-serving source, the contrib-only Debian mirror still beats nothing.
        assert_eq!(
            pick_debian_mirror(&sources[..4]).as_deref(),
            Some("http://contrib-only.example/debian")
        );
    }

    #[test]
    fn ubuntu_and_non_http_sources_are_not_debian_mirrors() {
        let ubuntu = "\
deb http://archive.ubuntu.com/ubuntu/ noble main restricted
deb http://archive.ubuntu.com/ubuntu/ noble-updates main restricted
deb http://security.ubuntu.com/ubuntu noble-security main
";
        assert_eq!(pick_debian_mirror(&parse_one_line(ubuntu)), None);
        let ubuntu822 = "Types: deb\nURIs: http://archive.ubuntu.com/ubuntu/\nSuites: noble noble-updates\nComponents: main\n";
        assert_eq!(pick_debian_mirror(&parse_deb822(ubuntu822)), None);
        let odd = "deb file:/srv/debian bookworm main\ndeb cdrom:[Debian]/ bookworm main\ndeb http://x.example/debian buster main\n";
        assert_eq!(pick_debian_mirror(&parse_one_line(odd)), None);
        assert_eq!(
            parse_one_line("deb [broken http://x bookworm main\ndeb\n"),
            []
        );
    }
}
