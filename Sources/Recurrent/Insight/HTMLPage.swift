import Foundation

/// The shell every Insight page shares: one self-contained HTML file (inline CSS and script, no
/// network), readable in print, with two markers a test (or a person) can read from the DOM:
///
///     <html data-ready="N points">   set after the page rendered: N = chart points it drew
///     <html data-error="message">    set by window.onerror / unhandled rejections
///     <html data-charts="C charts, E empty">   every page: its SVG charts, and those with no point drawn
///
/// Pages of static SVG charts get `data-ready` from the shell's closing script, which counts the
/// `data-n` attributes that `LineChart` / `ScatterChart` put on each series; interactive pages pass
/// `setsReadyItself: true` and write the marker when their own rendering is done.
public enum HTMLPage {
    /// Escapes text for HTML element content and attribute values.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// A JSON string literal, safe inside an inline `<script>` (no `</script>` or line separators).
    public static func jsString(_ s: String) -> String {
        var out = "\""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<": out += "\\u003c"
            case ">": out += "\\u003e"
            case "&": out += "\\u0026"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            default:
                if ch.value < 0x20 { out += String(format: "\\u%04x", ch.value) } else { out.unicodeScalars.append(ch) }
            }
        }
        return out + "\""
    }

    /// The colour-blind-safe palette of Okabe and Ito (2008), in the order series use it; every
    /// series also differs by dash pattern and marker, so colour never carries meaning alone.
    public static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999933"]

    static let css = """
    body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#111;background:#fff;margin:1.5em auto;max-width:1100px;padding:0 1em}
    h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin:1.2em 0 .4em}
    .note{color:#444;font-size:.9em}code,pre{font:13px/1.4 ui-monospace,Menlo,Consolas,monospace}
    table{border-collapse:collapse;font-size:.9em}td,th{border-bottom:1px solid #ddd;padding:.2em .6em;text-align:left}
    th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
    svg.chart{max-width:100%;height:auto;border:1px solid #ddd;background:#fff;margin:.3em .3em .3em 0}
    svg.chart text{font:12px system-ui,sans-serif;fill:#111}svg.chart .grid{stroke:#e4e4e4;stroke-width:1}
    svg.chart .axis{stroke:#333;stroke-width:1}
    .charts{display:flex;flex-wrap:wrap}
    @media print{body{max-width:none;margin:0;font-size:11pt}.noprint{display:none!important}
    svg.chart{border:none;page-break-inside:avoid}a{color:#000;text-decoration:none}h2{page-break-after:avoid}}
    """

    static let errorTrap = """
    window.onerror=function(m,s,l,c){document.documentElement.setAttribute('data-error',String(m)+' (line '+l+':'+c+')');};
    window.addEventListener('unhandledrejection',function(e){document.documentElement.setAttribute('data-error',String(e.reason));});
    """

    static let countPoints = """
    (function(){var n=0;document.querySelectorAll('[data-n]').forEach(function(e){n+=Number(e.getAttribute('data-n'))||0;});
    document.documentElement.setAttribute('data-ready',n+' points');})();
    """

    /// Runs on every page, before the page's own script: counts the `svg.chart`s and the empty ones
    /// (no drawable point in any series), so a test can tell a chart without data from a page with many.
    static let countCharts = """
    (function(){var c=0,e=0;document.querySelectorAll('svg.chart').forEach(function(s){var k=0;
    s.querySelectorAll('[data-n]').forEach(function(g){k+=Number(g.getAttribute('data-n'))||0;});c++;if(!k)e++;});
    document.documentElement.setAttribute('data-charts',c+' charts, '+e+' empty');})();
    """

    /// The whole page.
    ///
    /// - Parameters:
    ///   - title: the `<title>` and nothing else (put headings in `body`).
    ///   - body: HTML for `<body>`.
    ///   - script: JavaScript run at the end of the body.
    ///   - css: extra CSS after the shared rules.
    ///   - setsReadyItself: the script writes `data-ready`; otherwise the shell counts chart points.
    public static func render(title: String, body: String, script: String = "", css extraCSS: String = "",
                              setsReadyItself: Bool = false) -> String {
        var page = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        page += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        page += "<title>\(escape(title))</title>\n<script>\n\(errorTrap)\n</script>\n"
        page += "<style>\n\(css)\n\(extraCSS)\n</style>\n</head>\n<body>\n\(body)\n"
        page += "<script>\n\(countCharts)\n</script>\n"
        page += "<script>\n\(script)\n\(setsReadyItself ? "" : countPoints)\n</script>\n</body>\n</html>\n"
        return page
    }

    /// Writes a page atomically (a temporary file, then a rename).
    public static func write(_ html: String, to path: String) throws {
        try AtomicFile.write(Data(html.utf8), to: path)
    }
}
