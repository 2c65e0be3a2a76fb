//! `--plot FILE.svg`: the latency percentile curve of a run, drawn as a standalone SVG.
//!
//! The x axis is the percentile on the usual HdrHistogram scale, `1 / (1 - p)` in log
//! scale (labels 0 %, 90 %, 99 %, 99.9 %, 99.99 %, 99.999 %), so the tail is readable; the
//! y axis is latency in microseconds, linear from 0 to the maximum. The curve has one point
//! per histogram percentile step (`iter_quantiles(5)`), at most [`POINTS_MAX`] points.

use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;

use crate::error::LoadgenError;

/// Most points drawn on the curve.
pub const POINTS_MAX: usize = 4096;

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 480.0;
const MARGIN_LEFT: f64 = 80.0;
const MARGIN_RIGHT: f64 = 20.0;
const MARGIN_TOP: f64 = 40.0;
const MARGIN_BOTTOM: f64 = 50.0;
/// The x axis ends at the 99.999th percentile (1 / (1 - p) = 10^5).
const X_DECADES: f64 = 5.0;

/// Writes the percentile curve of `hist` to `path`, titled `title`.
pub fn write_svg(path: &Path, hist: &Histogram<u64>, title: &str) -> Result<(), LoadgenError> {
    std::fs::write(path, svg(hist, title)).map_err(|source| LoadgenError::WriteReport {
        path: path.to_path_buf(),
        source,
    })
}

/// The SVG text.
pub fn svg(hist: &Histogram<u64>, title: &str) -> String {
    let points = curve(hist);
    let y_max = (hist.max().max(1) as f64 * 1.05).ceil();
    let plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let x_of = |q: f64| MARGIN_LEFT + plot_w * (x_decades(q) / X_DECADES).min(1.0);
    let y_of = |v: f64| MARGIN_TOP + plot_h * (1.0 - v / y_max);

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    for (i, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        .iter()
        .enumerate()
    {
        let x = MARGIN_LEFT + plot_w * i as f64 / X_DECADES;
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{MARGIN_TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            MARGIN_TOP + plot_h,
            MARGIN_TOP + plot_h + 18.0
        );
    }
    for i in 0..=5 {
        let v = y_max * f64::from(i) / 5.0;
        let y = y_of(v);
        let _ = writeln!(
            s,
            r##"<line x1="{MARGIN_LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.0}</text>"##,
            MARGIN_LEFT + plot_w,
            MARGIN_LEFT - 6.0,
            y + 4.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">percentile</text>"#,
        MARGIN_LEFT + plot_w / 2.0,
        HEIGHT - 8.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">latency (µs)</text>"#,
        MARGIN_TOP + plot_h / 2.0,
        MARGIN_TOP + plot_h / 2.0
    );
    let mut path = String::new();
    for (i, (q, v)) in points.iter().enumerate() {
        let _ = write!(
            path,
            "{}{:.1},{:.1} ",
            if i == 0 { "M" } else { "L" },
            x_of(*q),
            y_of(*v as f64)
        );
    }
    let _ = writeln!(
        s,
        r##"<path d="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>"##,
        path.trim_end()
    );
    s.push_str("</svg>\n");
    s
}

/// (quantile, value) pairs of the curve, at most [`POINTS_MAX`], quantiles increasing.
pub fn curve(hist: &Histogram<u64>) -> Vec<(f64, u64)> {
    if hist.is_empty() {
        return Vec::new();
    }
    let mut points: Vec<(f64, u64)> = hist
        .iter_quantiles(5)
        .map(|it| {
            (
                it.quantile_iterated_to(),
                hist.highest_equivalent(it.value_iterated_to()),
            )
        })
        .collect();
    if points.len() > POINTS_MAX {
        let step = points.len().div_ceil(POINTS_MAX);
        let last = *points.last().expect("non-empty");
        points = points.into_iter().step_by(step).collect();
        if points.last() != Some(&last) {
            points.push(last);
        }
    }
    points
}

fn x_decades(q: f64) -> f64 {
    if q >= 1.0 {
        X_DECADES
    } else {
        (1.0 / (1.0 - q)).log10()
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{new_histogram, record};

    #[test]
    fn curve_rises_to_the_maximum() {
        let mut h = new_histogram();
        for v in 1..=10_000 {
            record(&mut h, v);
        }
        let points = curve(&h);
        assert!(points.len() > 10);
        assert!(
            points
                .windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1)
        );
        assert_eq!(points.last().unwrap().1, h.highest_equivalent(h.max()));
    }

    #[test]
    fn svg_is_a_complete_document_with_one_curve() {
        let mut h = new_histogram();
        for v in [10, 20, 30, 400] {
            record(&mut h, v);
        }
        let text = svg(&h, "a < b");
        assert!(text.starts_with("<svg"));
        assert!(text.trim_end().ends_with("</svg>"));
        assert_eq!(text.matches("<path").count(), 1);
        assert!(text.contains("a &lt; b"));
    }

    #[test]
    fn empty_histogram_draws_axes_without_a_curve() {
        let text = svg(&new_histogram(), "empty");
        assert!(text.contains("<path d=\"\""));
    }
}
