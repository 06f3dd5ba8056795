from fastnn.nn.modules.activation import (ELU, GELU, SELU, Hardtanh, LeakyReLU, LogSoftmax, Maxout, Mish, PReLU,
                                        ReLU, ReLU6, Sigmoid, SiLU, Softmax, Softplus, Swish, Tanh)
from fastnn.nn.modules.container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from fastnn.nn.modules.conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d
from fastnn.nn.modules.dropout import (AlphaDropout, DropConnect, DropPath, Dropout, Dropout2d,
                                        StochasticDepth)
from fastnn.nn.modules.linear import Flatten, Identity, Linear
from fastnn.nn.modules.loss import (BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss, CrossEntropyLoss, GaussianNLLLoss,
                                    HuberLoss, KLDivLoss, L1Loss, MarginRankingLoss, MSELoss, MultiLabelSoftMarginLoss,
                                    NLLLoss, PoissonNLLLoss, SmoothL1Loss, TripletMarginLoss)
from fastnn.nn.modules.module import Module
from fastnn.nn.modules.normalization import (BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm,
                                              LocalResponseNorm)
from fastnn.nn.modules.pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d,
                                       AvgPool1d, AvgPool2d, AvgPool3d, FractionalMaxPool2d, GlobalAvgPool2d,
                                       MaxPool1d, MaxPool2d, MaxPool3d)
from fastnn.nn.modules.sparse import Embedding
from fastnn.nn.modules.distance import CosineSimilarity, PairwiseDistance
from fastnn.nn.modules.fold import Fold, Unfold
from fastnn.nn.modules.padding import (CircularPad1d, CircularPad2d, ConstantPad1d, ConstantPad2d, ConstantPad3d,
                                       ReflectionPad1d, ReflectionPad2d, ReflectionPad3d, ReplicationPad1d,
                                       ReplicationPad2d, ReplicationPad3d, ZeroPad1d, ZeroPad2d)
from fastnn.nn.modules.pixelshuffle import PixelShuffle, PixelUnshuffle
from fastnn.nn.modules.upsampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d
from fastnn.nn.modules.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from fastnn.nn.modules.transformer import (MultiheadAttention, TransformerDecoder, TransformerDecoderLayer,
                                          TransformerEncoder, TransformerEncoderLayer)

# issue 14, part B
from fastnn.nn.modules.activation import (CELU, GLU, Hardshrink, Hardsigmoid, Hardswish, LogSigmoid, RReLU,
                                        Softmax2d, Softmin, Softshrink, Softsign, Tanhshrink, Threshold)
from fastnn.nn.modules.loss import (CTCLoss, HingeEmbeddingLoss, MultiLabelMarginLoss, MultiMarginLoss, SoftMarginLoss,
                                    TripletMarginWithDistanceLoss)
from fastnn.nn.modules.normalization import BatchNorm3d, InstanceNorm1d, InstanceNorm3d, RMSNorm
from fastnn.nn.modules.dropout import Dropout1d, Dropout3d, FeatureAlphaDropout
from fastnn.nn.modules.linear import Bilinear, Unflatten
from fastnn.nn.modules.padding import CircularPad3d, ZeroPad3d
from fastnn.nn.modules.pixelshuffle import ChannelShuffle
from fastnn.nn.modules.pooling import (AdaptiveAvgPool3d, AdaptiveMaxPool3d, LPPool1d, LPPool2d, LPPool3d,
                                       MaxUnpool1d, MaxUnpool2d, MaxUnpool3d)
from fastnn.nn.modules.lazy import (LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d, LazyConv1d, LazyConv2d,
                                    LazyConv3d, LazyConvTranspose1d, LazyConvTranspose2d, LazyInstanceNorm1d,
                                    LazyInstanceNorm2d, LazyInstanceNorm3d, LazyLinear, LazyModuleMixin)
from fastnn.nn.modules.sparse import EmbeddingBag
from fastnn.nn.modules.transformer import Transformer

__all__ = [name for name in dir() if name[0].isupper()]
