"""The comparison models of paper Tables 4-5 in NR-DFERNet's harness (docs/baselines.md).

Importing this package registers every baseline with :mod:`nrdfer.models.registry`
(``model.name`` in params.yaml, ``nrdfer flops --model NAME``):

========================  ==============================================================
name                      model
========================  ==============================================================
``c3d``                   C3D (Tran et al. 2015)
``r2plus1d_18``           R(2+1)D-18 (Tran et al. 2018)
``resnet3d_18``           3D ResNet-18, Hara et al. (2018)'s configuration
``i3d_rgb``               I3D, RGB stream (Carreira & Zisserman 2017)
``resnet18_lstm``         ResNet-18 per frame + LSTM
``resnet18_gru``          ResNet-18 per frame + GRU
``vgg11_lstm``            VGG-11 per frame + LSTM
``resnet3d_18_center``    3D ResNet-18 + center loss (Wen et al. 2016)
``ec_stfl``               3D ResNet-18 + EC-STFL loss (Jiang et al. 2020)
``former_dfer``           Former-DFER (Zhao & Liu 2021), as in the authors' code
========================  ==============================================================

Every baseline takes (B, T, 3, H, W) clips in [0, 1] and returns a
:class:`~nrdfer.models.output.ModelOutput` with ``logits == logits_seq``; the two with an
auxiliary loss expose it as ``model.extra_loss(output, labels)``.
"""

from nrdfer.models.baselines import c3d, former_dfer, i3d, recurrent, resnet3d

__all__ = ["c3d", "former_dfer", "i3d", "recurrent", "resnet3d"]
