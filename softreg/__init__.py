"""softreg: multinomial logistic (softmax) regression with weight decay, by minibatch SGD."""

__version__ = "0.1.0"
