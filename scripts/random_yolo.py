"""Random-weight YOLO detectors whose outputs depend on the picture, and pytorch-grad-cam helpers for them: shared by
scripts/make-detector-cases (the parity cases) and scripts/bench-methods (the detector row)."""
import copy

import torch
from ultralytics.cfg import DEFAULT_CFG_DICT
from ultralytics.nn.tasks import DetectionModel, yaml_model_load


def randomise_batchnorm(model, seed):
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)


def normalise_convolutions(model, x, skip=()):
    """Rescales every convolution, in execution order, so that its output has unit standard deviation on `x` (LSUV):
    with PyTorch's default initialisation a random YOLO's activations vanish layer after layer (the stride-8 features'
    standard deviation rounds to 0.000 and d output / d input is ~1e-15), so that its outputs would not depend on the
    picture and a parity test would check nothing but biases."""
    convs = [m for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d) and not any(k in n for k in skip)]
    with torch.no_grad():
        for conv in convs:
            seen = {}
            handle = conv.register_forward_hook(lambda m, i, o: seen.setdefault("y", o))
            model(x)
            handle.remove()
            std = float(seen["y"].std()) if "y" in seen else 0.0
            if std > 0:
                conv.weight /= std
                if conv.bias is not None:
                    conv.bias /= std


def random_yolo(yaml_name, seed, depth, width, max_channels, nc, imgsz):
    """Ultralytics' `yaml_name` structure at the given scale, random weights (seed), BatchNorm randomised, convolutions
    LSUV-normalised on a seeded calibration picture, class biases N(0, 0.5) (ultralytics' prior, sigmoid ~0.001, would
    put every score in the flat tail). Returns the model in eval mode and the calibration picture."""
    torch.manual_seed(seed)
    cfg = copy.deepcopy(yaml_model_load(yaml_name))
    cfg["scales"]["n"] = [depth, width, max_channels]
    cfg["scale"], cfg["nc"] = "n", nc
    model = DetectionModel(cfg, verbose=False)
    model.task, model.args = "detect", dict(DEFAULT_CFG_DICT)
    randomise_batchnorm(model, seed)
    model.eval()
    calibration = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(300 + seed))
    normalise_convolutions(model, calibration, skip=("dfl",))  # DFL's convolution is the fixed bin-index sum
    detect = model.model[-1]
    with torch.no_grad():
        # An NMS-free head (YOLOv10, YOLO26) infers with its one-to-one branch, which has its own class convolutions.
        for head in (detect.cv3, getattr(detect, "one2one_cv3", None) or []):
            for branch in head:
                branch[-1].bias.copy_(torch.randn(branch[-1].bias.shape, generator=torch.Generator().manual_seed(seed)) * 0.5)
    return model, calibration


class OutputElement:
    """A target: one element of each image's output (pytorch-grad-cam calls it with one image's output)."""

    def __init__(self, index):
        self.index = tuple(index)

    def __call__(self, output):
        return output[self.index]


class FirstOutput(torch.nn.Module):
    """The model's first output (ultralytics' export-mode Detect returns (y, x))."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        y = self.model(x)
        return y[0] if isinstance(y, (list, tuple)) else y
