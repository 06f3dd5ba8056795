"""fastnn.utils: `fastnn.utils.data` is fastnn.data (torch.utils.data's place), so PyTorch imports carry over."""
import sys

from fastnn import data

sys.modules[__name__ + ".data"] = data
