"""Network slimming's channel importance (Liu et al., ICCV 2017), as an outside nnprune criterion.

Network slimming trains with an L1 penalty on the BatchNorm scale factors gamma and prunes the
channels whose |gamma| is smallest. Here only the criterion is taken: |gamma| of the BatchNorm that
follows each prunable convolution, read from the trained weights (data-free). A layer without a
BatchNorm right after it cannot be scored this way, and says so.

Benchmark it: `PYTHONPATH=examples snakemake --cores all --configfile examples/slimming.yaml`
(README, "Benchmark your own criterion").
"""
import torch

from nnprune.errors import UserError
from nnprune.pruning.criteria import LayerInputs, criterion


@criterion(reads="weights")
def bn_scale(layer: LayerInputs) -> torch.Tensor:
    """|gamma| of the BatchNorm after the layer (network slimming, Liu et al. 2017)"""
    if layer.bn is None or layer.bn.weight is None:
        raise UserError(f"bn_scale: layer {layer.name!r} has no affine BatchNorm right after it",
                        "use bn_scale on networks with a BatchNorm after every prunable convolution")
    return layer.bn.weight.detach().abs()
