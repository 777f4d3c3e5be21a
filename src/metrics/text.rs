//! OpenMetrics text, as `prometheus-client` writes it, turned into the Prometheus text
//! format (0.0.4) that every scraper and parser reads.
//!
//! The two differ, for the series here, in counters only: OpenMetrics names the family
//! `x` in `# HELP`/`# TYPE` and its sample `x_total`, where the Prometheus format names
//! both `x_total`. `# UNIT` and the closing `# EOF` are OpenMetrics' own and left out.

/// The media type of what [`prometheus_text`] returns.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `openmetrics` in the Prometheus text format.
pub fn prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            // Written once the TYPE line says whether the name takes `_total`.
            help = Some(rest);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let suffix = if kind == "counter" { "_total" } else { "" };
            if let Some(help) = help.take() {
                let text = help.split_once(' ').map_or("", |(_, text)| text);
                out.push_str(&format!("# HELP {name}{suffix} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name}{suffix} {kind}\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_take_their_total_name() {
        let om =
            "# HELP starling_x Things.\n# TYPE starling_x counter\nstarling_x_total{a=\"1\"} 3\n\
                  # HELP starling_g Level.\n# TYPE starling_g gauge\nstarling_g 2\n# EOF\n";
        assert_eq!(
            prometheus_text(om),
            "# HELP starling_x_total Things.\n# TYPE starling_x_total counter\n\
             starling_x_total{a=\"1\"} 3\n# HELP starling_g Level.\n# TYPE starling_g gauge\n\
             starling_g 2\n"
        );
    }
}
