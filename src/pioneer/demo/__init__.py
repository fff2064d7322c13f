"""`pioneer demo`: a local web page to try a model (reconstruct, edit, interpolate, sample).

session.py does the work and is tested without a browser; vectors.py and examples.py gather
what the page offers; app.py lays out the page (gradio, imported lazily); server.py runs it.
"""

from pioneer.demo.session import DemoConfig, DemoError, DemoSession, Prepared

__all__ = ["DemoConfig", "DemoError", "DemoSession", "Prepared"]
