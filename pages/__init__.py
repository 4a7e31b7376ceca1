"""Beacon's pages: one module per page, registered with dash.register_page."""
