"""Geometry of the sensors: interaural delay models of two-ear receivers (``interaural``),
pinhole cameras (``camera``), equirectangular panoramas (``panorama``) and the cylindrical
reprojection that turns a camera yaw into a column shift (``cylinder``)."""
