//! Errors that point into a test-case file: file, line, column, and the
//! offending text underlined.

use std::{fmt, ops::Range, path::PathBuf};

use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};

/// An error in a test-case file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseError {
    pub file: PathBuf,
    /// Byte range in the file, when the error has a location.
    pub span: Option<Range<usize>>,
    pub message: String,
    source_text: String,
}

impl CaseError {
    pub fn new(
        file: &std::path::Path,
        source: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_owned(),
            span,
            message: message.into(),
            source_text: source.to_owned(),
        }
    }

    /// 1-based line and column of the span's start.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        let start = self.span.as_ref()?.start.min(self.source_text.len());
        let before = &self.source_text[..start];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Some((line, col))
    }
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.file.display().to_string();
        match &self.span {
            Some(span) => {
                let span =
                    span.start.min(self.source_text.len())..span.end.min(self.source_text.len());
                let report = &[Level::ERROR.primary_title(&self.message).element(
                    Snippet::source(&self.source_text)
                        .path(&path)
                        .annotation(AnnotationKind::Primary.span(span)),
                )];
                write!(f, "{}", Renderer::plain().render(report))
            }
            None => write!(f, "error: {}\n --> {path}", self.message),
        }
    }
}

impl std::error::Error for CaseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_at_file_line_and_column() {
        let src = "object = \"fw\"\n\n[[case]]\nname = 3\n";
        let at = src.find('3').unwrap();
        let e = CaseError::new(
            std::path::Path::new("testcases/fw.toml"),
            src,
            Some(at..at + 1),
            "expected a string",
        );
        assert_eq!(e.line_col(), Some((4, 8)));
        let shown = e.to_string();
        assert!(shown.contains("testcases/fw.toml:4:8"), "{shown}");
        assert!(shown.contains("expected a string"), "{shown}");
        assert!(shown.contains("name = 3"), "{shown}");
    }
}
