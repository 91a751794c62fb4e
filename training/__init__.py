"""Training: data sources (`data`), tf.data pipelines and augmentation (`pipeline`), recipes
(`recipes`), convnet teachers (`teachers`) and the distributed loop (`train`).

    keras-vits train --recipe fmnist_deit_hard
"""
