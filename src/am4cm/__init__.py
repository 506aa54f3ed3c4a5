"""am4cm: can the temporal attention of a crop-type LTAE serve as an unsupervised cloud mask?"""

__version__ = "0.1.0"
