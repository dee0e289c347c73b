"""Reading datasets into the channel-last float32 arrays imacs works on."""

from imacs.data.folder import ImageFolder, read_image_folder
from imacs.data.sources import Batch, DataSource, as_data_source

__all__ = ["Batch", "DataSource", "ImageFolder", "as_data_source", "read_image_folder"]
