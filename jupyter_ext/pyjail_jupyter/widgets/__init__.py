"""ipywidgets views for the notebook: live log tail, live stats plot, progress bars.

Import the modules themselves (``from pyjail_jupyter.widgets.logtail import LogTail``);
this package file stays empty so importing it does not pull in ipywidgets.
"""
