"""`python -m app.workshop ...`: the `flask model` commands without a Flask app."""

from app.workshop.cli import model_cli

if __name__ == "__main__":
    model_cli.main(prog_name="python -m app.workshop")
