"""Named Config recipes: a whole set of settings that belong together, chosen by evidence.

`Config` keeps Matterport's behaviour, which its weight files and tutorials rely on. A recipe is
a Config subclass for one situation; subclass it as you would Config:

    from mrcnn.recipes import ScratchConfig

    class ShapesConfig(ScratchConfig):
        NAME = "shapes"
        NUM_CLASSES = 1 + 3
"""
from mrcnn.config import Config


class ScratchConfig(Config):
    """Training from random weights (no ImageNet or COCO file to start from).

    The combination that learnt fastest from random weights on the learning bench, against
    torchvision's Mask R-CNN on the same data (docs/benchmarks.md, "Which engine settings help
    from random weights?"). Why each setting:

    - BatchNorm learns the data: TRAIN_BN, with moving averages that follow young weights
      (BATCH_NORM_MOMENTUM 0.9, torch's default), re-measured on a few training batches at the
      end of every epoch (PRECISE_BN_BATCHES), so each checkpoint infers with statistics of its
      own weights instead of averages that lag them;
    - box losses in the per-sampled form (smooth-L1 with beta 1/9, summed over the positives and
      divided by the sampled anchors or ROIs): nearly-right boxes are pulled as hard as wrong ones;
    - one grid between boxes, features and masks: ROIAlign reads at the boxes' pixel centres and
      the mask targets and pasted masks use the same points;
    - He initialisation of the convolutions, as the ResNet paper trains from scratch.

    Matterport's ImageNet and COCO files were trained the Matterport way (Config's defaults):
    start from them with Config, not with this recipe.
    """

    TRAIN_BN = True
    BATCH_NORM_MOMENTUM = 0.9
    PRECISE_BN_BATCHES = 10
    RPN_BBOX_LOSS = "per_sampled"
    MRCNN_BBOX_LOSS = "per_sampled"
    MASK_TARGET_SAMPLING = "pixel_centres"
    ROI_ALIGN = "pixel_centres"
    CONV_INIT = "he"
