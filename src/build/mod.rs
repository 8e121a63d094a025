//! The build driver: walks a plan step by step and assembles the image.
