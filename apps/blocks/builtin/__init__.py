"""Built-in logic, transform and flow-control blocks, one module each."""

from ..registry import register_block
from .flow import DelayBlock, DelayBlockV1, ForeachBlock, RespondBlock, SubflowBlock
from .logic import BranchBlock, MergeBlock, SwitchBlock
from .transform import SetBlock

BUILTIN_BLOCKS = (
    SetBlock,
    BranchBlock,
    SwitchBlock,
    MergeBlock,
    ForeachBlock,
    DelayBlockV1,
    DelayBlock,
    RespondBlock,
    SubflowBlock,
)


def register() -> None:
    """Register the built-in blocks. Called from ``BlocksConfig.ready``."""
    for block in BUILTIN_BLOCKS:
        register_block(block)
