"""Your own model, as benchbench sees it: a plugin file that registers builders by name.

The CI gate's paired suite (`paired_cpu.yaml`) loads this file twice: as it is in the pull
request, and as it is on the main branch (copied to `.bench-main/`), the second with the prefix
`main_`, so both versions are timed side by side in the same process."""
from torch import nn

import benchbench


def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class TinySegNet(nn.Module):
    """Encoder (three stride-2 stages) and a 1x1 classifier, upsampled to the input size."""

    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        layers = conv_bn_relu(3, width, 2)
        for _ in range(2):
            layers += conv_bn_relu(width, width * 2, 2) + conv_bn_relu(width * 2, width * 2)
            width *= 2
        self.encoder = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(width, num_classes, 1)
        self.upsample = nn.Upsample(scale_factor=8, mode="bilinear", align_corners=False)

    def forward(self, x):
        return self.upsample(self.classifier(self.encoder(x)))


@benchbench.register_model(family="user", paper="my own model", output_stride=8, size_divisor=8)
def my_segnet(*, num_classes: int = 19) -> nn.Module:
    return TinySegNet(num_classes)
