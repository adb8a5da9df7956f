import Recurrent
print("recurrent: isa \(GEMM.isa)")
