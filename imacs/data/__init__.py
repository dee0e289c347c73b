"""Reading datasets into the channel-last float32 arrays imacs works on."""

from imacs.data.folder import ImageFolder, read_image_folder

__all__ = ["ImageFolder", "read_image_folder"]
