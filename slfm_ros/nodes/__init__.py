"""Thin rclpy nodes: messages in, core, messages out."""
