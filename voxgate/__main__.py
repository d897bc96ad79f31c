from voxgate.cli import app

app()
