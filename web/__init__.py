"""Static files of the catalens web page, shipped inside the wheel as ``catalens.web``."""
