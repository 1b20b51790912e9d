"""The maths of distillation every lesson shares: softmax and temperature, the losses, lesson 06's losses."""
