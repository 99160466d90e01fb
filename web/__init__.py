"""Static files of the catalens web page, shipped inside the wheel as ``search.web``."""
