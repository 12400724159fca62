"""Self-contained HTML reports: figures drawn with matplotlib (Agg) as inline SVG, pages
rendered with jinja2; one file, readable offline without the tool."""
