"""ssgan: semi-supervised image classification with the K+1-class GAN of Salimans et al. 2016."""

__version__ = "0.1.0"
