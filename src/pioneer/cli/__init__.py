"""The `pioneer` command: a thin layer over the library. One module per command group:
train.py (training, and launch.py for torchrun), images.py (reconstruct, sample, interpolate,
attributes, edit, align), evaluate.py (metrics), demo.py (the web page), share.py (publish,
export)."""

from __future__ import annotations

import click

from pioneer import interrupts
from pioneer.cli import demo, evaluate, images, share, train


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="pioneer")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Balanced PIONEER: train progressively growing generative autoencoders, then encode,
    reconstruct, interpolate and edit images through their latent space."""
    # `pioneer train` keeps start-up signals recorded until its loop takes them over; every
    # other command gets the ordinary Ctrl-C back (a server or a long evaluation must stop).
    if ctx.invoked_subcommand != "train":
        interrupts.release()


for _module in (train, images, evaluate, demo, share):
    for _command in _module.COMMANDS:
        main.add_command(_command)

__all__ = ["main"]
