"""``ssgan-cli``: a ``LightningCLI`` over the same module and datamodule classes that Hydra builds.

    ssgan-cli fit --config conf/cli/digits_ssgan.yaml [--trainer.max_epochs=20]
    ssgan-cli test --config conf/cli/digits_ssgan.yaml --ckpt_path <run>/checkpoints/last.ckpt

There is no second schema: the options are the ``__init__`` arguments of ``SSGAN`` /
``SupervisedBaseline`` and of the datamodules (``ssgan-cli fit --help``). The model's image
shape, class count and class names come from the datamodule, as in ``ssgan-train``.
Self-training rounds are the ``ssgan.self_training.SelfTraining`` callback (``trainer.callbacks``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from pytorch_lightning.cli import LightningCLI

from ssgan.data.datamodule import SemiSupervisedDataModule
from ssgan.cpu import keep_freed_memory
from ssgan.errors import UserError
from ssgan.module import ClassifierModule


class SSGANCLI(LightningCLI):
    """Links the datamodule's image shape and classes into the model's arguments."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.image_shape", "model.init_args.image_shape", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        parser.link_arguments("data.classes", "model.init_args.class_names", apply_on="instantiate")

    def before_fit(self) -> None:
        from ssgan.train import warn_if_bf16_is_slow

        keep_freed_memory()  # as ssgan-train does (ssgan.cpu)
        warn_if_bf16_is_slow(self.trainer)


def build_cli(args: Sequence[str] | None = None, run: bool = True) -> SSGANCLI:
    """The CLI object (``run=False`` only instantiates the model, datamodule and trainer)."""
    return SSGANCLI(
        ClassifierModule, SemiSupervisedDataModule, subclass_mode_model=True, subclass_mode_data=True,
        args=list(args) if args is not None else None, run=run, auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True}, parser_kwargs={"parser_mode": "omegaconf"},
    )


def show_progress_messages() -> None:
    """Prints ssgan's INFO messages (e.g. each self-training round's line) to stderr, as ``ssgan-train``
    does through Hydra's logging, unless the program that runs the CLI has set up logging itself."""
    ssgan_logger = logging.getLogger("ssgan")
    if logging.getLogger().handlers or ssgan_logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    ssgan_logger.addHandler(handler)
    ssgan_logger.setLevel(logging.INFO)


def main(args: Sequence[str] | None = None) -> None:
    """Console entry point ``ssgan-cli``."""
    from ssgan.train import close_process_group

    show_progress_messages()
    try:
        close_process_group(build_cli(args).trainer)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
