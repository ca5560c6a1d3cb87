"""ROS-free core: signal processing, geometry, simulation, estimators, models, back-ends."""
