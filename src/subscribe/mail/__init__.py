"""Making email: the Jinja2 environment, compiled message layouts, headers, DATA's wire form."""
