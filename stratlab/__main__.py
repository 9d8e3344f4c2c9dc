from stratlab.cli import app

app()
