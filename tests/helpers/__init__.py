"""What the tests share, imported from here and never from another test file: a real server
process (server.py), the API's clients and model files (api.py), the page's helpers
(browser.py)."""
