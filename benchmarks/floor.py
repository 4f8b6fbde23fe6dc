"""The floor: a bare Flask app answering a one-line page.

Served by gunicorn with exactly the blog's settings, it is the fastest any Flask page can be on
this machine; every blog figure is reported as a fraction of it.
"""
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return "The floor: nothing is faster than this page.\n"
