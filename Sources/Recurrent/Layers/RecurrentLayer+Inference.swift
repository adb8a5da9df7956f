/// Inference over long sequences in chunks of time, so that memory grows with the outputs only.
///
/// A `.training` pass keeps every layer's gates, cells and states for backward (`RecurrentCache`:
/// about 6·T·B·H floats per LSTM layer and direction). An `.inference` pass needs none of that
/// after a layer is done, only its outputs, which the layer above reads. When one layer and
/// direction's cache would pass `inferenceChunkFloats`, `forward` runs each layer and direction
/// over chunks of `chunkSteps(batch:)` steps instead, carrying the state from chunk to chunk (in
/// the direction's own order, so a reverse direction starts with the last chunk), and keeps only:
///
///     the layer below's outputs       (T,B,R·H)   what this layer reads
///     this layer's outputs            (T,B,R·H)   the last layer's go straight into the (B,T,R·H) result
///     one chunk's cache               about C·B·(G+3)·H floats, C = chunk steps
///
/// `classify predict` with a 2-layer bidirectional character LSTM (H 64, E 32) on one line of
/// 200,000 characters peaked at 1,378 MB in one pass and at 466 MB in chunks; on 1,000,000
/// characters at 1,437 MB in chunks (2026-11-30, maximum RSS). Each chunk's steps compute the
/// same sums in the same order as one pass over all steps (the input projection's sums do not
/// depend on the number of rows, and the recurrence is the same per step), so the results are
/// bitwise identical; `RecurrentLayerTests` checks that against the one-pass forward.
extension RecurrentLayer {
    /// Floats of one layer and direction's cache above which an inference pass runs in chunks:
    /// 32 M (128 MiB). Every benchmark shape stays below it (eval512: 23 M), so they run as before.
    static let inferenceChunkFloats = 32 << 20

    /// Steps per chunk of an inference pass over `B` rows, or nil when one pass over all `T`
    /// steps stays within `inferenceChunkFloats`.
    func chunkSteps(batch B: Int, steps T: Int) -> Int? {
        let perStep = B * (kind.gateCount + 3) * hiddenSize
        guard T * perStep > Self.inferenceChunkFloats else { return nil }
        return max(1, Self.inferenceChunkFloats / perStep)
    }

    /// `forward(timeMajor:…)` in `.inference` mode, chunked (see the extension's doc). Returns the
    /// last layer's outputs batch-major (B,T,R·H), zero past each length, and the final state.
    func forwardInChunks(timeMajor input: LayerBuffer, batch B: Int, steps T: Int, chunk C: Int, state: RecurrentState?,
                         lengths: [Int]?, tokens: TokenInput?) -> (output: Tensor, state: RecurrentState) {
        let D = inputSize, H = hiddenSize, L = numLayers, R = directionCount
        let stateShape = [L * R, B, H]
        var finalHidden = Tensor(shape: stateShape)
        var finalCell: Tensor? = kind.hasCellState ? Tensor(shape: stateShape) : nil
        var out = Tensor(shape: [B, T, R * H])
        var below: LayerBuffer?
        for l in 0..<L {
            let din = l == 0 ? D : R * H
            let last = l == L - 1
            // This layer's outputs time-major (T,B,R·H) for the layer above; the last layer's go to `out`.
            let level = last ? nil : LayerBuffer(T * B * R * H, zeroed: false)
            for r in 0..<R {
                let index = l * R + r
                // The state carried from chunk to chunk, starting from the initial state.
                let hidden = LayerBuffer(B * H), cell = LayerBuffer(kind.hasCellState ? B * H : 0)
                state?.hidden.data.withUnsafeBufferPointer { p in
                    if let base = p.baseAddress { hidden.pointer.update(from: base + index * B * H, count: B * H) }
                }
                state?.cell?.data.withUnsafeBufferPointer { p in
                    if let base = p.baseAddress { cell.pointer.update(from: base + index * B * H, count: B * H) }
                }
                let starts = Array(stride(from: 0, to: T, by: C))
                for t0 in r == 1 ? starts.reversed() : starts {
                    let steps = min(C, T - t0)
                    let lc = LayerCache(kind: kind, batch: B, steps: steps, hidden: H, reverse: r == 1)
                    (lc.hiddens.pointer + lc.initialOffset).update(from: hidden.pointer, count: B * H)
                    lc.cells.map { ($0.pointer + lc.initialOffset).update(from: cell.pointer, count: B * H) }
                    let local = lengths?.map { max(0, min(steps, $0 - t0)) }
                    let chunkTokens = l == 0 ? tokens.map { $0.steps(from: t0, count: steps, batch: B) } : nil
                    withExtendedLifetime((input, below)) {
                        let source = UnsafePointer((l == 0 ? input : below ?? input).pointer)
                        forwardLayer(index, input: source + t0 * B * din, inputWidth: din, batch: B, steps: steps,
                                     lengths: local, tokens: chunkTokens, cache: lc)
                    }
                    hidden.pointer.update(from: lc.hiddens.pointer + lc.finalOffset, count: B * H)
                    lc.cells.map { cell.pointer.update(from: $0.pointer + lc.finalOffset, count: B * H) }
                    let h = lc.hiddens.pointer + lc.outputOffset
                    if let level {
                        for row in 0..<(steps * B) {
                            (level.pointer + (t0 * B + row) * R * H + r * H).update(from: h + row * H, count: H)
                        }
                    } else {
                        out.data.withUnsafeMutableBufferPointer { ob in
                            guard let op = ob.baseAddress else { return }
                            for s in 0..<steps {
                                for b in 0..<B {
                                    (op + (b * T + t0 + s) * R * H + r * H).update(from: h + (s * B + b) * H, count: H)
                                }
                            }
                        }
                    }
                }
                finalHidden.data.replaceSubrange(index * B * H ..< (index + 1) * B * H, with: hidden.array(count: B * H))
                if kind.hasCellState {
                    finalCell?.data.replaceSubrange(index * B * H ..< (index + 1) * B * H, with: cell.array(count: B * H))
                }
            }
            below = level
        }
        if let lengths {
            out.data.withUnsafeMutableBufferPointer { ob in
                guard let op = ob.baseAddress else { return }
                for b in 0..<B where lengths[b] < T {
                    (op + (b * T + lengths[b]) * R * H).update(repeating: 0, count: (T - lengths[b]) * R * H)
                }
            }
        }
        return (out, RecurrentState(hidden: finalHidden, cell: finalCell))
    }
}

extension TokenInput {
    /// The ids of steps [t0, t0 + count) of a (T,B) time-major sequence, with the same embedding.
    func steps(from t0: Int, count: Int, batch B: Int) -> TokenInput {
        TokenInput(timeMajor: Array(timeMajor[(t0 * B)..<((t0 + count) * B)]), embedding: embedding)
    }
}
