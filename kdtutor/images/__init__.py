"""The image pipeline of lessons 03-06: data, models, training, distillation, evaluation, lesson 06's runs."""
