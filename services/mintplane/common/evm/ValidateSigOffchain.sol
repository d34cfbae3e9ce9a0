// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title Deployless ERC-6492 / ERC-1271 / ECDSA signature check
/// @notice Never deployed. mintplane.common.signatures runs it with `eth_call` and no `to`: the call data is this
/// contract's creation code followed by `abi.encode(signer, hash, signature)`, and the call returns one
/// byte, 0x01 when the signature is valid for `signer` and 0x00 otherwise (the calling convention of the
/// ERC-6492 reference "ValidateSigOffchain"). Because it only ever runs inside `eth_call`, the factory
/// call that deploys a counterfactual wallet is simulated and leaves nothing on chain.
/// @dev Order of checks as ERC-6492 specifies: a wrapped signature (ending in the 32-byte magic suffix)
/// is unwrapped into (factory, factoryCalldata, innerSignature); the factory is called when the signer
/// has no code yet, or as a "prepare" call when the deployed wallet rejects the inner signature; then
/// ERC-1271 `isValidSignature` on the signer; ecrecover only for a signer without code.
contract ValidateSigOffchain {
    bytes32 private constant ERC6492_SUFFIX = 0x6492649264926492649264926492649264926492649264926492649264926492;
    bytes4 private constant ERC1271_MAGIC = 0x1626ba7e;

    constructor(address signer, bytes32 hash, bytes memory signature) {
        bool valid = _isValid(signer, hash, signature);
        assembly {
            mstore(0, valid)
            return(31, 1)
        }
    }

    function _isValid(address signer, bytes32 hash, bytes memory signature) private returns (bool) {
        if (_isWrapped(signature)) {
            // Drop the suffix in place (this memory is ours), then decode the wrapper.
            assembly {
                mstore(signature, sub(mload(signature), 32))
            }
            (address factory, bytes memory factoryCalldata, bytes memory inner) =
                abi.decode(signature, (address, bytes, bytes));
            if (signer.code.length == 0) {
                (bool deployed,) = factory.call(factoryCalldata);
                return deployed && signer.code.length > 0 && _erc1271(signer, hash, inner);
            }
            if (_erc1271(signer, hash, inner)) return true;
            (bool prepared,) = factory.call(factoryCalldata);
            return prepared && _erc1271(signer, hash, inner);
        }
        if (signer.code.length > 0) return _erc1271(signer, hash, signature);
        return _ecrecover(signer, hash, signature);
    }

    function _isWrapped(bytes memory signature) private pure returns (bool wrapped) {
        uint256 length = signature.length;
        if (length < 32) return false;
        bytes32 tail;
        assembly {
            tail := mload(add(signature, length))
        }
        wrapped = tail == ERC6492_SUFFIX;
    }

    function _erc1271(address signer, bytes32 hash, bytes memory signature) private view returns (bool) {
        (bool ok, bytes memory result) =
            signer.staticcall(abi.encodeWithSelector(ERC1271_MAGIC, hash, signature));
        return ok && result.length >= 32 && bytes4(result) == ERC1271_MAGIC;
    }

    function _ecrecover(address signer, bytes32 hash, bytes memory signature) private pure returns (bool) {
        if (signature.length != 65 || signer == address(0)) return false;
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(signature, 32))
            s := mload(add(signature, 64))
            v := byte(0, mload(add(signature, 96)))
        }
        if (v < 27) v += 27;
        return ecrecover(hash, v, r, s) == signer;
    }
}
