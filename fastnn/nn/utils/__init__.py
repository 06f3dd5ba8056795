"""fastnn.nn.utils: helpers that work on whole modules (fusion for inference, ...)."""
from fastnn.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_
from fastnn.nn.utils.fusion import fuse_conv_bn, fuse_conv_bn_modules
from fastnn.serialization import remap_state_dict
from fastnn.nn.utils import rnn
from fastnn.nn.utils.convert_parameters import parameters_to_vector, vector_to_parameters
from fastnn.nn.utils.spectral_norm import remove_spectral_norm, spectral_norm
from fastnn.nn.utils.weight_norm import remove_weight_norm, weight_norm
from fastnn.nn.utils import prune
from fastnn.nn.utils import parametrize
from fastnn.nn.utils import parametrizations
